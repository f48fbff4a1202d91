import csv

import numpy as np
import pytest
import torch

from odeflow.data.discovery_systems import irregular_series, solve_known, true_coefficient_rows
from odeflow.discover.sindy import Equations, fit_sindy

pytest.importorskip("pysindy")


@pytest.mark.parametrize("system,names", [("lotka-volterra", ["x", "y"]), ("cubic", ["x"])])
def test_clean_regular_data_recovers_coefficients_without_spurious_terms(system, names):
    t = torch.linspace(0, 15 if system == "lotka-volterra" else 8, 1500, dtype=torch.float64)
    x = solve_known(system, t)
    eq = fit_sindy(t, x, names, degree=3)
    truth = true_coefficient_rows(system, eq.terms).numpy()
    active = truth != 0
    assert np.all(eq.coefficients[~active] == 0)  # no spurious terms
    assert np.all(np.abs(eq.coefficients[active] - truth[active]) <= 0.05 * np.abs(truth[active]))


def test_term_names_follow_variable_names_and_files(tmp_path):
    t = torch.linspace(0, 15, 1500, dtype=torch.float64)
    x = solve_known("lotka-volterra", t)
    eq = fit_sindy(t, x, ["prey", "pred"], degree=2)
    assert eq.terms == ["1", "prey", "pred", "prey^2", "prey pred", "pred^2"]
    eq.write(tmp_path)
    lines = (tmp_path / "equations.txt").read_text().splitlines()
    assert lines[0].startswith("dprey/dt = 1.0") and "- 0.5000 prey pred" in lines[0]
    with (tmp_path / "coefficients.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["equation", *eq.terms] and [r[0] for r in rows[1:]] == ["dprey/dt", "dpred/dt"]
    assert float(rows[1][rows[0].index("prey pred")]) == pytest.approx(-0.5, rel=0.02)


def test_raw_noisy_irregular_data_picks_up_spurious_terms():
    # the motivation for the neural-ODE step: finite differences of noisy irregular samples are poor
    t, x, _ = irregular_series("lotka-volterra", n_obs=100, noise=0.02, seed=0)
    eq = fit_sindy(t, x, ["x", "y"], degree=3)
    truth = true_coefficient_rows("lotka-volterra", eq.terms).numpy()
    assert np.count_nonzero(eq.coefficients[truth == 0]) > 0


def test_equation_text_signs_and_constants():
    eq = Equations(["x"], ["1", "x", "x^3"], np.array([[-2.0, 1.0, -1.0]]))
    assert eq.lines(2) == ["dx/dt = -2.00 + 1.00 x - 1.00 x^3"]
    assert Equations(["x"], ["1", "x"], np.zeros((1, 2))).lines() == ["dx/dt = 0"]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(variables=["x y", "z"]), "ambiguous"),
        (dict(variables=["x"]), "d variable names"),
        (dict(degree=0), "degree >= 1"),
        (dict(x_dot=torch.zeros(3, 1)), "x_dot must match"),
    ],
)
def test_bad_inputs(kwargs, match):
    args = dict(t=torch.linspace(0, 1, 10), x=torch.rand(10, 2), variables=["x", "y"])
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fit_sindy(**args)
