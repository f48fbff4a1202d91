import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import odeflow
from odeflow.solvers.methods import RK4


class MLPField(nn.Module):
    def __init__(self, dim=2, width=16):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, width), nn.Tanh(), nn.Linear(width, dim)).double()

    def forward(self, t, y):
        return self.net(y) * (1.0 + 0.5 * torch.sin(t))


def hand_rk4(func, y0, t0, t1, n):
    """Plain autograd through a hand-written classic RK4 loop."""
    h = (t1 - t0) / n
    y = y0
    for i in range(n):
        t = torch.tensor(t0 + i * h, dtype=torch.float64)
        k1 = func(t, y)
        k2 = func(t + h / 2, y + h / 2 * k1)
        k3 = func(t + h / 2, y + h / 2 * k2)
        k4 = func(t + h, y + h * k3)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return y


@pytest.mark.parametrize("n", [1, 3, 10])
def test_gradient_is_the_discrete_gradient(n):
    """At any step size, even a coarse one, Disc-Opt returns the gradient of the discrete map."""
    func = MLPField()
    y0 = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    params = [y0, *func.parameters()]
    ref = torch.autograd.grad(hand_rk4(func, y0, 0.0, 1.5, n).pow(2).sum(), params)
    sol = odeflow.solve(
        func,
        y0,
        torch.tensor([0.0, 1.5], dtype=torch.float64),
        method=RK4,
        step=odeflow.FixedStep(1.5 / n),
        gradient=odeflow.DiscretizeOptimize(),
    )
    ours = torch.autograd.grad(sol.ys[-1].pow(2).sum(), params)
    for a, b in zip(ours, ref):
        assert torch.allclose(a, b, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("ckpt", [dict(checkpoints=3), dict(segment_steps=4), dict(segment_steps=1)])
@pytest.mark.parametrize("method", ["rk4", "dopri5"])
def test_checkpointing_gives_the_same_gradient(ckpt, method):
    func = MLPField()
    y0 = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 0.4, 1.0], dtype=torch.float64)
    grads, stats = [], []
    for grad in (odeflow.DiscretizeOptimize(), odeflow.DiscretizeOptimize(**ckpt)):
        sol = odeflow.solve(func, y0, t, method=method, step=odeflow.FixedStep(0.1), gradient=grad)
        grads.append(torch.autograd.grad(sol.ys.pow(2).sum(), [y0, *func.parameters()]))
        stats.append(sol.stats)
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-14)
    assert stats[1].nfe_backward > 0 and stats[0].nfe_backward == 0


def test_checkpointing_differentiates_the_output_times_and_closures():
    """Gradients w.r.t. t, y0 and the parameters of a module held in a closure, equal to plain Disc-Opt."""
    module = MLPField()
    func = lambda t, y: module(t, y)  # noqa: E731
    y0 = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 0.4, 1.0], dtype=torch.float64, requires_grad=True)
    grads = []
    for grad in (odeflow.DiscretizeOptimize(), odeflow.DiscretizeOptimize(segment_steps=3)):
        sol = odeflow.solve(func, y0, t, method="rk4", step=odeflow.FixedStep(0.1), gradient=grad)
        grads.append(torch.autograd.grad(sol.ys.pow(2).sum(), [y0, t, *module.parameters()]))
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-14)
    assert grads[0][1].abs().sum() > 0


def test_checkpointing_a_plain_function_needs_its_params():
    w = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    y0 = torch.ones(1, 2, dtype=torch.float64)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    with pytest.raises(TypeError, match="params"):
        odeflow.solve(
            lambda t, y: y @ w,
            y0,
            t,
            method="rk4",
            step=odeflow.FixedStep(0.1),
            gradient=odeflow.DiscretizeOptimize(checkpoints=2),
        )
    grads = [
        torch.autograd.grad(
            odeflow.solve(lambda t, y: torch.tanh(y @ w), y0, t, method="rk4", step=odeflow.FixedStep(0.1), gradient=g)
            .ys[-1]
            .sum(),
            w,
        )[0]
        for g in (odeflow.DiscretizeOptimize(), odeflow.DiscretizeOptimize(checkpoints=2, params=[w]))
    ]
    assert torch.allclose(grads[0], grads[1], rtol=1e-12, atol=1e-14)


def test_checkpointing_needs_fixed_steps():
    with pytest.raises(ValueError, match="FixedStep"):
        odeflow.solve(
            MLPField(),
            torch.zeros(1, 2, dtype=torch.float64),
            torch.tensor([0.0, 1.0]),
            gradient=odeflow.DiscretizeOptimize(checkpoints=2),
        )


def _peak_growth_mb(mode: str, steps: int) -> float:
    probe = Path(__file__).with_name("memory_probe.py")
    out = subprocess.run([sys.executable, str(probe), mode, str(steps)], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def test_memory_plain_grows_checkpointed_and_adjoint_do_not():
    """Peak RSS growth of forward+backward as the number of steps grows 10x (ratios only)."""
    plain = [_peak_growth_mb("plain", n) for n in (20, 200)]
    ckpt = [_peak_growth_mb("checkpointed", n) for n in (20, 200)]
    adjoint = [_peak_growth_mb("adjoint", n) for n in (20, 200)]
    measured = dict(plain=plain, checkpointed=ckpt, adjoint=adjoint)
    assert plain[1] > 4 * plain[0], measured
    assert ckpt[1] < plain[1] / 5, measured
    assert adjoint[1] < 2 * adjoint[0] + 20.0, measured
