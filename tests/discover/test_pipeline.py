import csv

import numpy as np
import pytest
import torch

from odeflow.cli.main import main
from odeflow.data import irregular_series, write_series_csv
from odeflow.data.discovery_systems import true_coefficient_rows
from odeflow.discover import NeuralFitConfig, discover_equations, fit_neural_ode

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


@pytest.mark.parametrize("kwargs,match", [
    (dict(x=torch.full((5, 2), float("nan"))), "NaN"),
    (dict(t=torch.tensor([0.0, 1.0, 1.0, 2.0, 3.0])), "strictly increasing"),
    (dict(x=torch.zeros(5)), r"x \[n, d\]"),
])
def test_bad_inputs(kwargs, match):
    args = dict(t=torch.arange(5.0), x=torch.rand(5, 2))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fit_neural_ode(args["t"], args["x"], NeuralFitConfig(iterations=1))


def test_discover_cli_writes_equations_and_named_coefficients(tmp_path, capsys):
    t, x, _ = irregular_series("lotka-volterra", n_obs=25, noise=0.02, t_end=3.0)
    data = write_series_csv(tmp_path / "series.csv", t, x, ["prey", "predator"], time_name="time")
    out = tmp_path / "run"
    assert main(["discover", "--data", str(data), "--out", str(out), "--iterations", "5", "--hidden", "8",
                 "--degree", "2", "--samples", "50", "--raw"]) == 0
    with (out / "coefficients.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["equation", "1", "prey", "predator", "prey^2", "prey predator", "predator^2"]
    assert [r[0] for r in rows[1:]] == ["dprey/dt", "dpredator/dt"]
    lines = (out / "equations.txt").read_text().splitlines()
    assert len(lines) == 2 and lines[0].startswith("dprey/dt = ")
    for name in ("fit.png", "summary.json", "raw_equations.txt"):
        assert (out / name).is_file()


def test_discover_cli_missing_file(tmp_path, capsys):
    assert main(["discover", "--data", str(tmp_path / "none.csv"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_lotka_volterra_recovered_within_5_percent_without_spurious_terms():
    # measured: 222 s on the shared, loaded 2-core machine; coefficients within 1% at 2% noise
    t, x, _ = irregular_series("lotka-volterra", n_obs=100, noise=0.02, seed=0)
    result = discover_equations(t, x, ["x", "y"], NeuralFitConfig(iterations=600), degree=2, threshold=0.05)
    eq = result.equations
    truth = true_coefficient_rows("lotka-volterra", eq.terms).numpy()
    active = truth != 0
    assert np.all(eq.coefficients[~active] == 0)
    assert np.all(np.abs(eq.coefficients[active] - truth[active]) <= 0.05 * np.abs(truth[active]))
