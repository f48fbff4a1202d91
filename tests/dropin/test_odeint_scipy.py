"""method='scipy_solver' (scipy.integrate.solve_ivp) as in torchdiffeq, and its adjoint."""

import pytest
import torch
from torch import nn

import odeflow

torchdiffeq = pytest.importorskip("torchdiffeq")
pytest.importorskip("scipy")
D = torch.float64


@pytest.mark.parametrize("solver", ["LSODA", "RK45", "Radau"])
@pytest.mark.parametrize("reverse", [False, True])
def test_scipy_solver_matches_torchdiffeq(solver, reverse):
    t = torch.linspace(0, 1, 5, dtype=D)
    t = t.flip(0) if reverse else t
    f = lambda t, y: -y * torch.cos(t)  # noqa: E731
    y0 = torch.ones(3, dtype=D)
    ours = odeflow.odeint(f, y0, t, method="scipy_solver", options=dict(solver=solver), rtol=1e-9, atol=1e-11)
    theirs = torchdiffeq.odeint(f, y0, t, method="scipy_solver", options=dict(solver=solver), rtol=1e-9, atol=1e-11)
    assert torch.allclose(ours, theirs, atol=1e-12)
    assert torch.allclose(ours[:, 0], torch.exp(-(torch.sin(t) - torch.sin(t[0]))), atol=1e-7)


def test_scipy_solver_adjoint_gradient():
    w = nn.Parameter(torch.tensor(-0.7, dtype=D))
    y0 = torch.ones(2, dtype=D, requires_grad=True)
    t = torch.tensor([0.0, 1.0], dtype=D)
    out = odeflow.odeint_adjoint(
        lambda t, y: w * y, y0, t, method="scipy_solver", adjoint_params=(w,), rtol=1e-10, atol=1e-12
    )
    gy, gw = torch.autograd.grad(out[-1].sum(), (y0, w))
    e = torch.exp(torch.tensor(-0.7, dtype=D))
    assert torch.allclose(gy, e.expand(2), atol=1e-8) and abs(float(gw - 2 * e)) < 1e-8
