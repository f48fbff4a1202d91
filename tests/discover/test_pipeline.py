import csv

import numpy as np
import pytest
import torch

from odeflow.cli.main import main
from odeflow.data import irregular_series, write_series_csv
from odeflow.data.discovery_systems import true_coefficient_rows
from odeflow.discover import NeuralFitConfig, discover_equations, fit_neural_ode
from odeflow.discover.library import LibrarySpec
from odeflow.discover.options import DiscoverOptions

pytest.importorskip("pysindy")


@pytest.mark.slow  # ~30 s alone; the discover CLI test covers the same pipeline end to end
def test_fit_reduces_loss_and_resamples_with_field_derivatives():
    t, x, _ = irregular_series("lotka-volterra", n_obs=30, noise=0.02, t_end=4.0)
    fit = fit_neural_ode(t, x, NeuralFitConfig(iterations=60, hidden=(16,), window=4))
    assert fit.losses[-1] < 0.2 * fit.losses[0]
    t_reg, x_reg, xdot = fit.resample(200)
    assert t_reg[0] == t[0] and t_reg[-1] == t[-1] and x_reg.shape == (200, 2)
    assert torch.allclose(x_reg[0], fit.x0)
    # the derivatives handed to SINDy are the slope of the resampled trajectory
    fd = (x_reg[1:] - x_reg[:-1]) / (t_reg[1:] - t_reg[:-1]).unsqueeze(-1)
    assert (fd - 0.5 * (xdot[1:] + xdot[:-1])).abs().max() < 1e-3


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(x=torch.full((5, 2), float("nan"))), "NaN"),
        (dict(t=torch.tensor([0.0, 1.0, 1.0, 2.0, 3.0])), "strictly increasing"),
        (dict(x=torch.zeros(5)), r"x \[n, d\]"),
    ],
)
def test_bad_inputs(kwargs, match):
    args = dict(t=torch.arange(5.0), x=torch.rand(5, 2))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fit_neural_ode(args["t"], args["x"], NeuralFitConfig(iterations=1))


def test_discover_cli_writes_equations_and_named_coefficients(tmp_path, capsys):
    t, x, _ = irregular_series("lotka-volterra", n_obs=25, noise=0.02, t_end=3.0)
    data = write_series_csv(tmp_path / "series.csv", t, x, ["prey", "predator"], time_name="time")
    out = tmp_path / "run"
    assert (
        main(
            [
                "discover",
                "--data",
                str(data),
                "--out",
                str(out),
                "--iterations",
                "5",
                "--hidden",
                "8",
                "--degree",
                "2",
                "--samples",
                "50",
                "--raw",
                "--ensemble",
                "5",
                "--quiet",
            ]
        )
        == 0
    )
    with (out / "coefficients.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["equation", "1", "prey", "predator", "prey^2", "prey predator", "predator^2"]
    assert [r[0] for r in rows[1:]] == ["dprey/dt", "dpredator/dt"]
    lines = (out / "equations.txt").read_text().splitlines()
    eq_lines = [line for line in lines if not line.startswith("# ")]
    assert len(eq_lines) == 2 and lines[0].startswith("dprey/dt = ")
    notes = [line[2:] for line in lines if line.startswith("# ")]
    assert notes[0].startswith("confidence: high") or notes[0].startswith("confidence: low (")
    for name in ("fit.png", "summary.json", "raw_equations.txt"):
        assert (out / name).is_file()
    import json

    summary = json.loads((out / "summary.json").read_text())
    ref = summary["refinement"]  # the search on the observations ran by default
    assert ref["bic"] <= ref["bic_before"] + 10 and ref["models_fitted"] >= 1
    assert ref["terms"] == sum(float(v) != 0 for r in rows[1:] for v in r[1:])
    # the same confidence in summary.json and equations.txt; low: reasons and the best models by BIC
    assert summary["confidence"] in ("high", "low")
    assert notes[0].startswith(f"confidence: {summary['confidence']}")
    assert (summary["confidence"] == "low") == bool(summary["confidence_reasons"])
    if summary["confidence"] == "low":
        assert 1 <= len(summary["best_models"]) <= 3
        bics = [m["bic"] for m in summary["best_models"]]
        assert bics == sorted(bics) and bics[0] <= summary["chosen_bic"]
        assert all(len(m["equations"]) == 2 for m in summary["best_models"])
        assert sum(line.startswith("best ") for line in notes) == len(bics)


def test_no_refine_keeps_the_regression_model(tmp_path):
    import json

    t, x, _ = irregular_series("lotka-volterra", n_obs=25, noise=0.02, t_end=3.0)
    data = write_series_csv(tmp_path / "series.csv", t, x, ["u", "v"], time_name="time")
    out = tmp_path / "run"
    args = ["discover", "--data", str(data), "--out", str(out), "--iterations", "5", "--hidden", "8"]
    assert main(args + ["--samples", "50", "--ensemble", "0", "--quiet", "--no-refine"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["refinement"] is None and summary["config"]["no_refine"] is True
    # nothing was checked on the observations: low, saying so
    assert summary["confidence"] == "low" and "not fitted to the observations" in summary["confidence_reasons"][0]


def test_discover_cli_missing_file(tmp_path, capsys):
    assert main(["discover", "--data", str(tmp_path / "none.csv"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_discover_cli_bootstrap_reaches_the_options_and_one_refit_is_refused(tmp_path, capsys):
    """--bootstrap N is DiscoverOptions.bootstrap; N = 1 is refused before any fit, writing nothing."""
    from odeflow.cli.discover import options_of

    data = tmp_path / "d.csv"
    data.write_text("t,x\n0,1\n1,2\n2,3\n")
    args = ["discover", "--data", str(data), "--out", str(tmp_path / "o")]
    assert main(args + ["--bootstrap", "1"]) == 2
    assert "bootstrap" in capsys.readouterr().err and not (tmp_path / "o").exists()
    from odeflow.cli.main import build_parser

    parsed = build_parser().parse_args(args + ["--bootstrap", "7"])
    assert options_of(parsed)[0].bootstrap == 7


@pytest.mark.slow
def test_lotka_volterra_recovered_within_5_percent_without_spurious_terms():
    # measured: 222 s on the shared, loaded 2-core machine; coefficients within 1% at 2% noise
    t, x, _ = irregular_series("lotka-volterra", n_obs=100, noise=0.02, seed=0)
    result = discover_equations(
        t,
        x,
        ["x", "y"],
        DiscoverOptions(library=LibrarySpec(degree=2), threshold=0.05),
        NeuralFitConfig(iterations=600),
    )
    eq = result.equations
    truth = true_coefficient_rows("lotka-volterra", eq.terms).numpy()
    active = truth != 0
    assert np.all(eq.coefficients[~active] == 0)
    assert np.all(np.abs(eq.coefficients[active] - truth[active]) <= 0.05 * np.abs(truth[active]))


def test_discover_cli_long_form_one_field_inclusion_and_fit_summary(tmp_path, capsys):
    import json

    import torch

    from odeflow.data.discovery_families import random_instance
    from odeflow.data.trajectories_csv import write_trajectories_csv

    inst = random_instance("lotka-volterra", 51)
    t1, x1, _ = inst.observe(20, 0.01, 1)
    t2, x2, _ = inst.observe(20, 0.01, 2)
    traj = torch.cat([torch.zeros(20, dtype=torch.long), torch.ones(20, dtype=torch.long)])
    data = write_trajectories_csv(tmp_path / "long.csv", torch.cat([t1, t2]), torch.cat([x1, x2]), traj, ["x", "y"])
    out = tmp_path / "run"
    assert (
        main(
            [
                "discover",
                "--data",
                str(data),
                "--out",
                str(out),
                "--iterations",
                "4",
                "--hidden",
                "8",
                "--samples",
                "60",
                "--ensemble",
                "5",
                "--quiet",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trajectories"] == 2 and summary["observations"] == 40
    assert summary["fit"]["iterations"] == 4 and np.isfinite(summary["fit"]["train_loss"])
    assert summary["final_loss"] == summary["fit"]["train_loss"]
    assert len(summary["selection"]["degree"]) == 2
    with (out / "inclusion.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:4] == ["equation", "1", "x", "y"] and len(rows[0]) == 11  # degrees 1-3 compete: degree-3 columns
    assert all(0.0 <= float(v) <= 1.0 for r in rows[1:] for v in r[1:])
    # inclusion.csv is the search's bagged inclusion (kept in summary.json) through the calibration map
    from odeflow.discover.calibration import INCLUSION_MAP

    bagged = np.array(summary["refinement"]["inclusion_bagged"])
    written = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
    np.testing.assert_allclose(written, INCLUSION_MAP(bagged), atol=5e-4)
    assert "neural ODE fit 4 iterations" in capsys.readouterr().out


def test_discover_cli_weak_method_recovers_a_random_instance(tmp_path, capsys):
    from odeflow.data.discovery_families import random_instance

    inst = random_instance("duffing", 52)
    t, x, _ = inst.observe(400, 0.0, 52)
    data = write_series_csv(tmp_path / "s.csv", t, x, ["x", "y"])
    out = tmp_path / "run"
    assert main(["discover", "--data", str(data), "--out", str(out), "--method", "weak", "--ensemble", "10"]) == 0
    with (out / "coefficients.csv").open() as fh:
        rows = list(csv.reader(fh))
    terms = rows[0][1:]
    coef = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
    truth = inst.truth(terms)
    assert np.array_equal(coef != 0, truth != 0)
    assert np.abs(coef - truth).max() < 0.02 * np.abs(truth).max()
    assert not (out / "fit.png").exists() and "weak-form SINDy" in capsys.readouterr().out


@pytest.mark.parametrize(
    "text,match",
    [
        ("t,x,y\n0,1,1\n1,2,1\n2,3,1\n3,4,1\n4,5,1\n", r"\['y'\] are constant"),
        ("t,x\n0,1\n1,2\n2,3\n", "at least 4"),
        ("trajectory,t,x\na,0,1\na,1,2\na,1,3\n", "strictly increasing in trajectory 'a'"),
    ],
)
def test_discover_cli_bad_data_is_a_clear_error(tmp_path, capsys, text, match):
    import re

    p = tmp_path / "s.csv"
    p.write_text(text)
    assert main(["discover", "--data", str(p), "--out", str(tmp_path / "o"), "--iterations", "2", "--quiet"]) == 2
    assert re.search(match, capsys.readouterr().err)


@pytest.mark.slow  # one full default fit: 268 s on the shared 2-core machine at load ~9 (passed)
@pytest.mark.parametrize("seed", [61])
def test_random_lotka_volterra_instance_recovered_with_defaults(seed):
    from odeflow.data.discovery_families import random_instance

    inst = random_instance("lotka-volterra", seed)
    t, x, _ = inst.observe(150, 0.01, seed)
    result = discover_equations(t, x, ["x", "y"], DiscoverOptions(ensemble=10))
    truth = inst.truth(result.equations.terms)
    assert np.array_equal(result.equations.coefficients != 0, truth != 0)
    assert np.linalg.norm(result.equations.coefficients - truth) / np.linalg.norm(truth) < 0.05


def test_discover_cli_reports_the_conservation_law_and_leaves_r_out(tmp_path, capsys):
    import json

    from odeflow.data.discovery_families import random_instance

    inst = random_instance("sir", 53)
    t, x, _ = inst.observe(150, 0.01, 53)
    data = write_series_csv(tmp_path / "sir.csv", t, x, ["S", "I", "R"])
    out = tmp_path / "run"
    assert main(["discover", "--data", str(data), "--out", str(out), "--method", "weak", "--ensemble", "5"]) == 0
    lines = (out / "equations.txt").read_text().splitlines()
    (note,) = [ln for ln in lines if ln.startswith("# conserved along the data:")]
    assert "R is left out" in note
    assert any(ln.startswith("# confidence: low") for ln in lines)  # weak form: nothing fitted to the observations
    law = json.loads((out / "summary.json").read_text())["invariants"][0]
    assert law["left_out"] == "R" and np.allclose(law["coefficients"], [1, 1, 1], atol=0.03)
    with (out / "coefficients.csv").open() as fh:
        rows = list(csv.reader(fh))
    coef = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
    truth = inst.truth(rows[0][1:])
    assert np.array_equal(coef != 0, truth != 0)
    assert np.linalg.norm(coef - truth) / np.linalg.norm(truth) < 0.05
    assert "# conserved along the data" in capsys.readouterr().out
