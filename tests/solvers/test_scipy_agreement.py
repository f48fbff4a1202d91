"""odeflow against scipy.integrate.solve_ivp (DOP853, tight tolerances) on nonlinear problems."""

import math

import numpy as np
import pytest
import torch

import odeflow

scipy_integrate = pytest.importorskip("scipy.integrate")

A_SPIRAL = np.array([[-0.1, 2.0], [-2.0, -0.1]])


def vdp(t, y):
    return [y[1], (1 - y[0] ** 2) * y[1] - y[0]]


def lotka(t, y):
    return [1.5 * y[0] - y[0] * y[1], -3.0 * y[1] + y[0] * y[1]]


def pendulum(t, y):
    return [y[1], -math.sin(y[0])]


def spiral(t, y):
    u3 = [y[0] ** 3, y[1] ** 3]
    return [A_SPIRAL[0, 0] * u3[0] + A_SPIRAL[1, 0] * u3[1], A_SPIRAL[0, 1] * u3[0] + A_SPIRAL[1, 1] * u3[1]]


def forced(t, y):
    return [y[1], -y[0] - 0.1 * y[1] + math.cos(2 * t)]


def torch_rhs(name):
    A = torch.tensor(A_SPIRAL, dtype=torch.float64)
    return {
        "vdp": lambda t, y: torch.stack([y[1], (1 - y[0] ** 2) * y[1] - y[0]]),
        "lotka": lambda t, y: torch.stack([1.5 * y[0] - y[0] * y[1], -3.0 * y[1] + y[0] * y[1]]),
        "pendulum": lambda t, y: torch.stack([y[1], -torch.sin(y[0])]),
        "spiral": lambda t, y: A.T @ y**3,
        "forced": lambda t, y: torch.stack([y[1], -y[0] - 0.1 * y[1] + torch.cos(2 * t)]),
    }[name]


PROBLEMS = {
    "vdp": (vdp, [2.0, 0.0], 5.0),
    "lotka": (lotka, [1.0, 1.0], 5.0),
    "pendulum": (pendulum, [1.0, 0.0], 5.0),
    "spiral": (spiral, [2.0, 0.0], 1.5),
    "forced": (forced, [1.0, 0.0], 5.0),
}
SOLVERS = {
    "dopri5": ("dopri5", odeflow.Adaptive(rtol=1e-9, atol=1e-11)),
    "tsit5": ("tsit5", odeflow.Adaptive(rtol=1e-9, atol=1e-11)),
    "bosh3": ("bosh3", odeflow.Adaptive(rtol=1e-8, atol=1e-10)),
    "rk4": ("rk4", odeflow.FixedStep(2e-3)),
}


@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("solver", sorted(SOLVERS))
@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_agrees_with_solve_ivp(problem, solver, direction):
    rhs, y0, T = PROBLEMS[problem]
    t0, t1 = 0.0, T
    if direction == "backward":  # from the true y(T) back to t = 0
        y0 = scipy_integrate.solve_ivp(rhs, (0.0, T), y0, method="DOP853", rtol=1e-13, atol=1e-13).y[:, -1]
        t0, t1 = T, 0.0
    t_eval = np.linspace(t0, t1, 17)
    ref = scipy_integrate.solve_ivp(rhs, (t0, t1), y0, method="DOP853", t_eval=t_eval, rtol=1e-13, atol=1e-13)
    method, step = SOLVERS[solver]
    sol = odeflow.solve(
        torch_rhs(problem), torch.tensor(y0, dtype=torch.float64), torch.tensor(t_eval), method=method, step=step
    )
    ours = sol.ys.numpy().T
    err = np.max(np.abs(ours - ref.y) / (1.0 + np.abs(ref.y)))
    assert err < 2e-6, f"max relative deviation {err:.2e}"
