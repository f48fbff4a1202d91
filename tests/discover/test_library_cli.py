"""`odeflow discover --library ... --inputs ...`: the new terms and control inputs end to end."""

import csv
import json

import numpy as np
import pytest
import torch

from odeflow.cli.main import main
from odeflow.discover.library import parse_library
from odeflow.discover.model_search import SearchProblem, refine_on_observations
from odeflow.discover.observation_fit import segments_of
from odeflow.discover.options import SearchOptions

from .test_library import _forced, _matrix, _pendulum


def _write(path, t, x, names):
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["t", *names])
        for ti, row in zip(t.tolist(), x.tolist()):
            w.writerow([repr(ti), *map(repr, row)])
    return path


def test_a_forced_system_from_a_csv_with_an_input_column(tmp_path, capsys):
    t, x, _, u, _, truth = _forced(2)
    data = _write(tmp_path / "forced.csv", t, torch.cat([x, u], 1), ["x", "y", "u"])
    out = tmp_path / "run"
    assert main(["discover", "--data", str(data), "--out", str(out), "--inputs", "u", "--method", "weak"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["variables"] == ["x", "y"] and summary["inputs"] == ["u"]
    with (out / "coefficients.csv").open() as fh:
        rows = list(csv.reader(fh))
    terms = rows[0][1:]
    assert [r[0] for r in rows[1:]] == ["dx/dt", "dy/dt"]  # the input is not predicted
    coef = np.array([[float(c) for c in r[1:]] for r in rows[1:]])
    assert np.array_equal(coef != 0, _matrix(truth, terms) != 0), summary["equations"]


@pytest.mark.slow  # 35-55 s on the loaded shared machine; the CLI test below runs the fit without the search
def test_the_neural_route_carries_the_inputs_through_every_stage(tmp_path):
    # a short fit and a one-round search (the plumbing, not the accuracy): the field takes u, the
    # samples, the search on the observations, the confidence checks and fit.png all run with an
    # input column (and, through the CLI, Fourier terms)
    from odeflow.discover import NeuralFitConfig
    from odeflow.discover.figures import plot_fit
    from odeflow.discover.options import DiscoverOptions
    from odeflow.discover.pipeline import discover_equations

    t, x, _, u, _, _ = _forced(3, n=40)
    search = SearchOptions(rounds=1, restarts=0, pairs=0, verify=1, ensemble=0)
    opts = DiscoverOptions(library=parse_library("poly:1"), n_samples=50, ensemble=0, search=search)
    res = discover_equations(t, x, ["x", "y"], opts, NeuralFitConfig(iterations=10, hidden=(8,)), None, u, ("u",))
    assert res.fit is not None and res.fit.inputs is not None and res.refinement is not None
    assert res.equations.terms == ["1", "x", "y", "u"]
    assert res.confidence is not None and any(n.startswith("confidence:") for n in res.equations.notes)
    plot_fit(res.t, res.x, res.fit, res.variables, tmp_path / "fit.png", res.trajectory)
    assert (tmp_path / "fit.png").is_file()


def test_the_cli_fits_with_an_input_column_and_fourier_terms(tmp_path):
    # the neural fit, its samples and fit.png with an input column; summary.json names the inputs
    # and the library
    t, x, _, u, _, _ = _forced(3, n=40)
    data = _write(tmp_path / "forced.csv", t, torch.cat([x, u], 1), ["x", "y", "u"])
    out = tmp_path / "run"
    args = ["discover", "--data", str(data), "--out", str(out), "--inputs", "u", "--iterations", "5", "--no-refine"]
    args += ["--library", "poly:2+fourier:1", "--hidden", "8", "--samples", "50", "--ensemble", "0", "--quiet"]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["inputs"] == ["u"] and "x u" in summary["library"] and "sin(u)" in summary["library"]


@pytest.mark.parametrize(
    "extra,match",
    [
        (["--library", "poly:2+sine:1"], "cannot read 'sine:1'"),
        (["--library", "poly:2", "--degree", "3"], "says degree 2 but --degree is 3"),
        (["--inputs", "force"], r"no input column\(s\) \['force'\]; the variable columns are \['x', 'y', 'u'\]"),
        (["--inputs", "x,y,u"], "leave at least one variable"),
        (["--inputs", ","], "comma-separated column names"),
        (["--library", "poly+fourier:3", "--max-terms", "30"], r"--degree 2 \(.*fourier:2.*raise --max-terms"),
    ],
)
def test_bad_library_and_input_options_are_clear_errors(tmp_path, capsys, extra, match):
    import re

    t, x, _, u, _, _ = _forced(1, n=20)
    data = _write(tmp_path / "forced.csv", t, torch.cat([x, u], 1), ["x", "y", "u"])
    assert main(["discover", "--data", str(data), "--out", str(tmp_path / "o"), "--quiet", *extra]) == 2
    assert re.search(match, capsys.readouterr().err)


@pytest.mark.parametrize("seed", [4])
def test_the_search_on_the_observations_swaps_theta_for_sin_theta(seed):
    # the pendulum's regression with θ in place of sin θ: the search on the 1%-noise observations
    # (Fourier columns in the fits and the predicted BICs) restores sin θ and its coefficient
    inst, t, x, clean, xdot = _pendulum(seed)
    lib = parse_library(inst.library).build(inst.variables)
    truth = inst.truth(lib.terms)
    from odeflow.discover.options import SelectionOptions
    from odeflow.discover.selection import select_model

    groups = np.minimum((5 * t.numpy() / t[-1].item()).astype(int), 4)
    sel = select_model(clean.numpy(), xdot, inst.variables, groups, (1,), (), SelectionOptions(ensemble=0), lib)
    wrong = truth.copy()
    wrong[1, lib.terms.index("theta")], wrong[1, lib.terms.index("sin(theta)")] = (
        truth[1, lib.terms.index("sin(theta)")],
        0,
    )
    sel.coefficients = wrong
    seg = segments_of(t, x, torch.zeros(len(t), dtype=torch.long), substeps=4)
    problem = SearchProblem(
        lib.numpy(clean.numpy()), xdot, lib, np.ones(len(lib), bool), seg, lib.terms, inst.variables
    )
    found = refine_on_observations(sel, problem, SearchOptions(ensemble=0, restarts=0))
    assert np.array_equal(found.fit.support, truth != 0), found.moves
    assert np.abs(found.fit.coefficients - truth).max() < 0.03 * np.abs(truth).max()


@pytest.mark.slow  # 27-100 s each with OMP_NUM_THREADS=1 on the shared machine (docs/dynamics.md §3b items 12-13)
@pytest.mark.parametrize("which", ["pendulum", "forced"])
def test_default_pipeline_recovers_a_sin_term_and_an_input_end_to_end(which):
    from odeflow.discover.options import DiscoverOptions
    from odeflow.discover.pipeline import discover_equations

    if which == "pendulum":
        inst, t, x, _, _ = _pendulum(11, n=150)
        opts = DiscoverOptions(library=parse_library(inst.library), ensemble=0)
        res = discover_equations(t, x, list(inst.variables), opts)
        want = inst.truth(res.equations.terms)
    else:
        t, x, _, u, _, truth = _forced(11, n=150)
        res = discover_equations(t, x, ["x", "y"], DiscoverOptions(ensemble=0), inputs=u, input_names=("u",))
        want = _matrix(truth, res.equations.terms)
    got = res.equations.coefficients
    assert np.array_equal(got != 0, want != 0), res.equations.lines()
    assert np.linalg.norm(got - want) / np.linalg.norm(want) < 0.02
    assert res.confidence is not None and res.confidence.level == "high"
