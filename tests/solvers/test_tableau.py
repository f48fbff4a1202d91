import math

import pytest
import torch

from odeflow.solvers.methods import METHODS, get_method
from odeflow.solvers.runge_kutta import interpolate, rk_step
from odeflow.solvers.tableau import ButcherTableau

A = torch.tensor([[-0.5, 2.0], [-2.0, -0.5]], dtype=torch.float64)
Y0 = torch.tensor([1.0, 0.5], dtype=torch.float64)


def exact(t: float) -> torch.Tensor:
    return torch.linalg.matrix_exp(A * t) @ Y0


def f(t, y):
    return A @ y


# Step counts per method where the error sits well above rounding and in the asymptotic regime.
ORDER_CASES = {
    "euler": [64, 128, 256, 512],
    "midpoint": [32, 64, 128, 256],
    "heun": [32, 64, 128, 256],
    "rk4": [16, 32, 64, 128],
    "bosh3": [16, 32, 64, 128],
    "dopri5": [8, 16, 32, 64],
    "tsit5": [8, 16, 32, 64],
    "dopri8": [4, 6, 8, 12],
    "rk4_38": [16, 32, 64, 128],
    "heun3": [16, 32, 64, 128],
    "fehlberg2": [32, 64, 128, 256],
}


def fixed_solve(tab, n, T=1.0):
    h = T / n
    y, t = Y0, 0.0
    for _ in range(n):
        ts = [torch.tensor(t + c * h, dtype=torch.float64) for c in tab.c]
        y, _, _ = rk_step(tab, f, y, f(ts[0], y), ts, h, False)
        t += h
    return y


def loglog_slope(xs, ys):
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def test_every_method_has_a_convergence_case():
    assert set(ORDER_CASES) == set(METHODS)


@pytest.mark.parametrize("name", sorted(ORDER_CASES))
def test_empirical_convergence_order_matches_declared(name):
    tab = get_method(name)
    ns = ORDER_CASES[name]
    errors = [float((fixed_solve(tab, n) - exact(1.0)).norm()) for n in ns]
    slope = loglog_slope([1.0 / n for n in ns], errors)
    assert abs(slope - tab.order) < 0.5, f"{name}: measured order {slope:.2f}, declared {tab.order}"


@pytest.mark.parametrize("name", ["dopri5", "tsit5", "bosh3", "heun", "dopri8", "fehlberg2"])
def test_embedded_error_estimate_has_its_order(name):
    """The local error estimate h*sum(e_i k_i) scales like h^(error_order + 1)."""
    tab = get_method(name)
    hs = [0.2, 0.1, 0.05, 0.025] if name != "dopri8" else [0.4, 0.3, 0.2, 0.15]
    ests = []
    for h in hs:
        ts = [torch.tensor(c * h, dtype=torch.float64) for c in tab.c]
        _, _, err = rk_step(tab, f, Y0, f(ts[0], Y0), ts, h, True)
        ests.append(float(err.norm()))
    assert abs(loglog_slope(hs, ests) - (tab.error_order + 1)) < 0.6


@pytest.mark.parametrize("name,local_order", [("dopri5", 5), ("tsit5", 5), ("bosh3", 4)])
def test_dense_output_local_order(name, local_order):
    """Interpolating inside one step: error O(h^(p_interp + 1)) for theta in (0, 1)."""
    tab = get_method(name)
    hs = [0.2, 0.1, 0.05, 0.025]
    errs = []
    for h in hs:
        ts = [torch.tensor(c * h, dtype=torch.float64) for c in tab.c]
        y1, ks, _ = rk_step(tab, f, Y0, f(ts[0], Y0), ts, h, False)
        f1 = f(torch.tensor(h, dtype=torch.float64), y1)
        errs.append(float((interpolate(tab, Y0, y1, ks, f1, 0.37, h) - exact(0.37 * h)).norm()))
    assert loglog_slope(hs, errs) > local_order - 0.5


@pytest.mark.parametrize("name", ["dopri5", "tsit5"])
def test_dense_output_reproduces_endpoints(name):
    tab = get_method(name)
    h = 0.3
    ts = [torch.tensor(c * h, dtype=torch.float64) for c in tab.c]
    y1, ks, _ = rk_step(tab, f, Y0, f(ts[0], Y0), ts, h, False)
    assert torch.allclose(interpolate(tab, Y0, y1, ks, None, 1.0, h), y1, atol=1e-14)
    assert torch.allclose(interpolate(tab, Y0, y1, ks, None, 0.0, h), Y0, atol=1e-14)


def test_dopri5_dense_coefficients_match_scipy():
    scipy_rk = pytest.importorskip("scipy.integrate._ivp.rk")
    import numpy as np

    assert np.allclose(np.array(get_method("dopri5").dense), scipy_rk.RK45.P, atol=1e-15)


def test_fsal_is_derived_from_the_numbers():
    fsal = {name for name, tab in METHODS.items() if tab.fsal}
    assert fsal == {"bosh3", "dopri5", "tsit5"}


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(c=[0.0, 0.5], a=[[], [0.4]], b=[0.0, 1.0]), "sums to"),
        (dict(c=[0.0, 0.5], a=[[], [0.5]], b=[0.2, 0.7]), "sum to"),
        (dict(c=[0.0, 0.5], a=[[], [0.5, 0.1]], b=[0.0, 1.0]), "entries"),
        (dict(c=[0.0, 0.5], a=[[], [0.5]], b=[0.0, 1.0], b_err=[0.1, 0.1], error_order=1), "error weights"),
    ],
)
def test_invalid_tableau_is_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ButcherTableau(name="bad", order=2, **kwargs)


def test_tableau_is_frozen():
    with pytest.raises(Exception):
        get_method("rk4").order = 5


def test_unknown_method_lists_valid_ones():
    with pytest.raises(ValueError, match="dopri5.*rk4|rk4.*dopri5"):
        get_method("rk45")
