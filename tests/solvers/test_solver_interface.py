"""The one solver interface (solvers/solver.py): every method is a step with nothing kept between
calls, and the loops drive any object with that interface, not only the methods they know."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from helpers.every_method import EVERY_METHOD
from odeflow.solvers import get_method
from odeflow.solvers.controller import PIController
from odeflow.solvers.grid import integrate_grid
from odeflow.solvers.loop import fixed_grid, integrate_adaptive, integrate_fixed
from odeflow.solvers.runge_kutta import hermite
from odeflow.solvers.solution import SolverStats
from odeflow.solvers.solver import ExplicitRK, HermiteInterpolant, StepResult, as_solver
from odeflow.solvers.state import ErrorNorm, StatePacker
from odeflow.solvers.stepping import Adaptive
from odeflow.solvers.times import StepTimes


def _linear_system(seed: int, d: int = 3):
    """y' = A y with a random stable A (eigenvalues' real parts in [-2, -0.1])."""
    g = np.random.default_rng(seed)
    q, _ = np.linalg.qr(g.normal(size=(d, d)))
    a = q @ np.diag(-g.uniform(0.1, 2.0, d)) @ q.T + 0.5 * (lambda m: m - m.T)(g.normal(size=(d, d)))
    return a, g.normal(size=d)


@pytest.mark.parametrize("name", EVERY_METHOD)
def test_every_method_is_a_pure_step(name):
    """The same (y, carry, t, h) give the same step, bit for bit, whatever was stepped before:
    a method keeps nothing between calls (its history travels in carry)."""
    a, y0 = _linear_system(len(name))
    at = torch.tensor(a)
    f = lambda t, y: at @ y  # noqa: E731
    solver = as_solver(get_method(name))
    times = StepTimes(torch.float64, torch.device("cpu"))
    y, carry, t, h = torch.tensor(y0), None, 0.0, 0.05
    for _ in range(6):  # past the Adams start-up steps
        res = solver.step(f, None, y, carry, t, h, t + h, times)
        y, carry, t = res.y1, res.carry(), t + h
    first = solver.step(f, None, y, carry, t, h, t + h, times)
    for _ in range(3):  # unrelated steps in between
        solver.step(f, None, torch.tensor(y0) * 3, None, 5.0, 0.2, 5.2, times)
    again = solver.step(f, None, y, carry, t, h, t + h, times)
    assert torch.equal(first.y1, again.y1)
    assert torch.equal(first.dense.at(0.3), again.dense.at(0.3))


class HeunEuler:
    """A solver written outside odeflow, not a Butcher tableau: Heun's method with Euler's as the
    embedded estimate, y1 = y + h/2 (k1 + k2), err = h/2 (k2 - k1), cubic Hermite output."""

    name, order, adaptive = "heun-euler (test)", 2, True

    def controller(self, ctrl: Adaptive) -> PIController:
        return PIController.pi(ctrl, 2, 1)

    def lands_on_outputs(self) -> bool:
        return False

    def check_adaptive(self) -> None:
        pass

    def step(self, f, norm, y, carry, t, h, t1, times, before_jump=False, span=None) -> StepResult:
        t0, te = times.stages(t, h, [0.0, 1.0], before_jump, span)
        k1 = f(t0, y) if carry is None else carry
        k2 = f(te, y + h * k1)
        y1 = y + 0.5 * h * (k1 + k2)
        error = 0.0 if norm is None else float(norm((0.5 * h * (k2 - k1)).detach(), y.detach(), y1.detach()))
        return StepResult(y1, error, HermiteInterpolant(f, lambda: te, y, y1, k1, h, None), k1)


@pytest.mark.parametrize("seed", range(4))
def test_the_adaptive_loop_drives_a_solver_it_does_not_know(seed):
    """A user's solver object through the one adaptive loop, on random linear systems: within
    its tolerance of scipy's solution at random output times (dense output between steps)."""
    a, y0 = _linear_system(100 + seed)
    at = torch.tensor(a)
    t_out = sorted(np.random.default_rng(seed).uniform(0, 3, 5).tolist()) + [3.0]
    t_out = [0.0] + t_out
    ctrl = Adaptive(rtol=1e-6, atol=1e-9)
    stats = SolverStats()
    outs, _ = integrate_adaptive(
        HeunEuler(),
        lambda t, y: at @ y,
        torch.tensor(y0),
        t_out,
        ctrl,
        ErrorNorm(StatePacker(torch.tensor(y0)), ctrl.rtol, ctrl.atol),
        stats,
    )
    ref = solve_ivp(lambda t, y: a @ y, (0.0, 3.0), y0, t_eval=t_out[1:], rtol=1e-12, atol=1e-14).y.T
    err = max(float(np.abs(o.numpy() - r).max() / (1e-9 + 1e-6 * np.abs(r).max())) for o, r in zip(outs, ref))
    assert err < 50, err  # a second-order pair's global error: a few tolerances
    assert stats.accepted > 10 and stats.steps == stats.accepted + stats.rejected


def test_the_grid_loop_drives_a_solver_it_does_not_know():
    """The same solver on an explicit grid: Heun's second order (error ratio ~4 when h halves),
    its outputs between grid points from its own (cubic Hermite) interpolant."""
    a, y0 = _linear_system(7)
    at = torch.tensor(a)
    exact = solve_ivp(lambda t, y: a @ y, (0.0, 2.0), y0, t_eval=[1.3, 2.0], rtol=1e-12, atol=1e-14).y.T
    errors = []
    for n in (40, 80):
        grid = np.linspace(0.0, 2.0, n + 1).tolist()
        outs = integrate_grid(
            HeunEuler(), lambda t, y: at @ y, torch.tensor(y0), grid, [0.0, 1.3, 2.0], "own", SolverStats()
        )
        errors.append(float(np.abs(outs[-1].numpy() - exact[-1]).max()))
        assert float(np.abs(outs[0].numpy() - exact[0]).max()) < 20 * errors[-1] + 1e-6
    assert 3.0 < errors[0] / errors[1] < 5.0


@pytest.mark.parametrize("name", ["rk4", "dopri5", "midpoint"])
def test_the_equal_step_loop_is_the_grid_loop_on_its_own_grid(name):
    """The equal-step loop (stage times from the grid's prepared table) takes the same steps
    as the grid loop on the same points, bit for bit, for a tableau and for a user's solver
    on the same table (output times on grid points)."""
    a, y0 = _linear_system(len(name))
    at = torch.tensor(a)
    f = lambda t, y: at @ y  # noqa: E731
    t_out, substeps = [0.0, 0.4, 1.1, 1.5], [3, 5, 2]
    tab = get_method(name)
    grid = fixed_grid(tab, t_out, substeps, torch.float64, torch.device("cpu"))
    points = grid.starts + grid.ends[-1:]
    for method in (tab, HeunEuler()):
        outs, last = integrate_fixed(method, f, torch.tensor(y0), grid, SolverStats())
        ref = integrate_grid(method, f, torch.tensor(y0), points, t_out, "own", SolverStats())
        assert len(outs) == 3 and torch.equal(outs[-1], last)
        assert all(torch.equal(o, r) for o, r in zip(outs, ref))


def test_the_controllers():
    """PI: safety err^(-alpha/q) err_prev^(beta/q) clipped; I: the same with alpha 1, beta 0 and
    half the step after a failure; a step that cannot shrink raises."""
    ctrl = Adaptive(safety=0.9, alpha=0.7, beta=0.4, min_factor=0.2, max_factor=10.0)
    pi, i = PIController.pi(ctrl, 5, 4), PIController.integral(ctrl, 5, 4)
    factor, prev = pi.accepted(0.3, 0.5)
    assert factor == pytest.approx(0.9 * 0.3 ** (-0.7 / 5) * 0.5 ** (0.4 / 5)) and prev == 0.3
    assert i.accepted(0.3, 0.5)[0] == pytest.approx(0.9 * 0.3 ** (-1 / 5))
    assert pi.accepted(0.0, 1.0)[0] == 10.0 and pi.accepted(1e-30, 1.0)[0] == 10.0
    assert pi.rejected(4.0, 0.0, 0.1) == pytest.approx(max(0.2, 0.9 * 4.0 ** (-1 / 5)))
    assert pi.rejected(math.inf, 0.0, 0.1) == 0.2 and i.rejected(math.inf, 0.0, 0.1) == 0.5
    assert pi.accepts(1.0, 0.1) and not pi.accepts(1.01, 0.1)
    with pytest.raises(Exception, match="underflow"):
        pi.rejected(4.0, 1.0, 1e-17)


def test_explicit_rk_step_matches_its_tableau():
    """ExplicitRK's dense output at theta = 1 is y1 and its Hermite output (no continuous
    extension) agrees with `runge_kutta.hermite` built by hand."""
    a, y0 = _linear_system(3)
    at = torch.tensor(a)
    f = lambda t, y: at @ y  # noqa: E731
    times = StepTimes(torch.float64, torch.device("cpu"))
    for name in ("dopri5", "bosh3"):
        res = ExplicitRK(get_method(name)).step(f, None, torch.tensor(y0), None, 0.0, 0.1, 0.1, times)
        assert torch.allclose(res.dense.at(1.0), res.y1, rtol=0, atol=1e-14)
    res = ExplicitRK(get_method("rk4")).step(f, None, torch.tensor(y0), None, 0.0, 0.1, 0.1, times)
    by_hand = hermite(torch.tensor(y0), res.y1, f(None, torch.tensor(y0)), f(None, res.y1), 0.4, 0.1)
    assert torch.allclose(res.dense.at(0.4), by_hand, rtol=0, atol=1e-15)


@pytest.mark.parametrize("gradient", ["disc-opt", "opt-disc"])
def test_a_users_method_through_solve_with_both_gradient_modes(gradient):
    """The user's solver passed as method= to odeflow.solve: values and gradients (y0 and a
    parameter) within the tolerance of a tight dopri5 reference, by backprop and by the adjoint."""
    import odeflow

    a, y0_np = _linear_system(11)
    at = torch.tensor(a)
    k = torch.nn.Parameter(torch.tensor(0.8, dtype=torch.float64))
    y0 = torch.tensor(y0_np, requires_grad=True)
    t = torch.linspace(0, 2, 5, dtype=torch.float64)
    f = lambda t, y: k * (at @ y)  # noqa: E731
    mode = odeflow.DiscretizeOptimize() if gradient == "disc-opt" else odeflow.OptimizeDiscretize(params=[k])
    sol = odeflow.solve(f, y0, t, method=HeunEuler(), step=Adaptive(rtol=1e-6, atol=1e-9), gradient=mode)
    got = torch.autograd.grad(sol.ys[-1].sum(), (y0, k))
    ref = odeflow.solve(f, y0, t, method="dopri5", step=Adaptive(rtol=1e-10, atol=1e-12))
    want = torch.autograd.grad(ref.ys[-1].sum(), (y0, k))
    assert float((sol.ys - ref.ys).abs().max()) < 1e-6  # measured 4e-8
    for g, w in zip(got, want):
        assert float((g - w).abs().max()) < 1e-6 * (1 + float(w.abs().max()))  # measured 1e-8 - 3e-8
