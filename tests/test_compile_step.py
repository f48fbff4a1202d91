"""odeflow.compile_step: the same training trajectory as the eager loop, and clear errors."""

import shutil

import pytest
import torch
from torch import nn

import odeflow

D = torch.float64
pytestmark = pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None, reason="compiling needs a C++ compiler"
)


def _train(compiled: bool, steps: int = 4):
    torch.manual_seed(3)
    field = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2)).to(D)
    opt = torch.optim.Adam(field.parameters(), lr=0.05)
    y0, t = torch.tensor([[1.0, -0.5]], dtype=D), torch.linspace(0, 1, 5, dtype=D)
    target = torch.zeros(5, 1, 2, dtype=D)

    def loss_fn():
        ys = odeflow.solve(lambda _t, y: field(y), y0, t, method="rk4", step=odeflow.FixedStep(0.25)).ys
        return (ys - target).pow(2).sum()

    if compiled:
        step = odeflow.compile_step(loss_fn, opt)
    else:

        def step():
            opt.zero_grad()
            loss = loss_fn()
            loss.backward()
            opt.step()
            return loss.detach()

    losses = [float(step()) for _ in range(steps)]
    return losses, [p.detach().clone() for p in field.parameters()]


def test_compiled_step_follows_the_eager_trajectory():
    eager_losses, eager_params = _train(False)
    comp_losses, comp_params = _train(True)
    # torch's compiled Adam computes its bias corrections from the float32 step counter on the
    # tensor side (eager reads it as a Python float): agreement to ~1e-6, not to rounding.
    assert comp_losses[0] == pytest.approx(eager_losses[0], rel=1e-12)
    assert comp_losses == pytest.approx(eager_losses, rel=1e-4)
    assert comp_losses[-1] < 0.5 * comp_losses[0]
    for a, b in zip(comp_params, eager_params):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_compile_step_errors():
    p = nn.Parameter(torch.zeros(2))
    with pytest.raises(TypeError, match="torch.optim.Optimizer"):
        odeflow.compile_step(lambda: p.sum(), "adam")
    step = odeflow.compile_step(lambda: p * 2, torch.optim.SGD([p], lr=0.1))
    with pytest.raises(ValueError, match="scalar tensor"):
        step()
