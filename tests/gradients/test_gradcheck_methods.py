"""gradcheck of y0, the output times t and the parameters for every method in the method table.

The methods come from the shared list of every method (helpers/every_method.py, read from the
method table), so a new method is checked without being listed here. Discretize-optimize differentiates the discrete solution, so it must agree with
finite differences of that same solution (float64, step-size decisions fixed). Optimize-
discretize gives the continuous gradient, so its check runs with steps fine enough that the
discretization error is below gradcheck's tolerance (error ~ h^p), on one output interval
(Adams' equal-step history then stays valid when gradcheck moves the times).
dL/dt_i = dL/dy(t_i) . f(t_i, y(t_i)) and dL/dt_0 = -a(t_0) . f(t_0, y_0) hold for the
continuous solution; discretize-optimize gets them from the grid moving with t.
"""

from __future__ import annotations

import pytest
import torch

from helpers.every_method import EVERY_METHOD
from odeflow import solve
from odeflow.gradients import DiscretizeOptimize, OptimizeDiscretize
from odeflow.solvers import Adaptive, FixedStep, get_method

D = torch.float64
METHODS = EVERY_METHOD


def _problem(seed: int):
    """A random non-autonomous field f(t, y) = tanh(W y) + sin(w t) y, y0 and increasing times."""
    g = torch.Generator().manual_seed(seed)
    w = (torch.randn(2, 2, generator=g, dtype=D) * 0.5, 1.0 + 3.0 * torch.rand((), generator=g, dtype=D))
    y0 = torch.randn(2, generator=g, dtype=D)
    t = torch.cumsum(0.2 + 0.3 * torch.rand(3, generator=g, dtype=D), 0) - 0.1
    return w, y0, t


def _field(W, omega):
    return lambda tt, y: torch.tanh(y @ W) + torch.sin(omega * tt) * y


def _check(solve_with, y0, t, W, atol: float = 1e-5) -> None:
    """gradcheck with respect to y0, t and W, one at a time (the others held fixed)."""
    args = [y0, t, W]
    for i, name in enumerate(["y0", "t", "W"]):

        def fn(x, i=i):
            a = list(args)
            a[i] = x
            return solve_with(*a)

        x = args[i].clone().requires_grad_(True)
        assert torch.autograd.gradcheck(fn, (x,), atol=atol), name


def _do_gradcheck(method: str, step, seeds=range(2), atol: float = 1e-5) -> None:
    for seed in seeds:
        (W, omega), y0, t = _problem(seed)

        def run(y0_, t_, W_):
            return solve(_field(W_, omega), y0_, t_, method=method, step=step, gradient=DiscretizeOptimize()).ys

        _check(run, y0, t, W, atol)


@pytest.mark.parametrize("method", METHODS)
def test_discretize_optimize_gradcheck_every_method(method):
    """The discrete solution's derivative in y0, t (grid and interpolation moving with t) and W:
    fixed steps (each output interval split into equal steps), and adaptive steps for the methods
    of order >= 4 (the low-order ones need many steps at a tolerance where the step-size
    decisions, which are not differentiated, stay below gradcheck's tolerance: the slow test)."""
    m = get_method(method)
    _do_gradcheck(method, FixedStep(h=0.1))
    if m.adaptive and m.order >= 4:
        _do_gradcheck(method, Adaptive(rtol=1e-6, atol=1e-8))


@pytest.mark.slow
@pytest.mark.parametrize("method", [m for m in METHODS if get_method(m).adaptive and get_method(m).order < 4])
def test_discretize_optimize_gradcheck_low_order_adaptive(method):
    """Adaptive steps of the low-order methods at the default tolerance (at rtol=1e-6 the
    step-size decisions of fehlberg2 and implicit_euler already move the finite differences
    beyond gradcheck's tolerance; up to ~3 minutes per method at 1e-7). implicit_euler, whose
    error estimate is first order, still moves them by up to 2e-4 (measured) through its step
    sizes, which are decisions, not differentiated: checked to atol=5e-4."""
    _do_gradcheck(method, Adaptive(), seeds=range(1), atol=5e-4 if get_method(method).order == 1 else 1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_discretize_optimize_gradcheck_one_step_per_interval(method):
    """FixedStep() (one step from output time to output time, torchdiffeq's default grid for
    fixed-grid methods) on times close enough for the implicit methods' Newton iteration."""
    (W, omega), y0, t = _problem(7)
    t = t[0] + (t - t[0]) * 0.3

    def run(y0_, t_, W_):
        return solve(_field(W_, omega), y0_, t_, method=method, step=FixedStep()).ys

    _check(run, y0, t, W)


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_optimize_discretize_gradcheck_every_method(method):
    """The continuous adjoint's gradients, with steps fine enough that the discretization error
    is below gradcheck's tolerance."""
    m = get_method(method)
    if m.order == 1:
        pytest.skip("first order: a step fine enough for gradcheck's tolerance takes ~1e5 steps")
    rtol = 1e-9 if m.order >= 4 else 1e-6
    step = Adaptive(rtol=rtol, atol=rtol * 1e-2) if m.adaptive else FixedStep(h=min(0.05, 10 ** (-6 / m.order)))
    (W, omega), y0, t = _problem(3)
    t = t[:2]

    def run(y0_, t_, W_):
        return solve(_field(W_, omega), y0_, t_, method=method, step=step, gradient=OptimizeDiscretize(params=[W_])).ys

    _check(run, y0, t, W)
