"""Events with compile=True: the search takes each attempted step as one compiled call, the solve to
the event compiles as any solve; the event time, states, gradients (through t_e as well) and
statistics equal the eager solve's, for both gradient modes."""

import shutil

import pytest
import torch
from torch import nn

import odeflow
from odeflow import Adaptive, DiscretizeOptimize, FixedStep, OptimizeDiscretize
from odeflow.compiling import compile_possible

D = torch.float64
needs_cxx = pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None, reason="compile=True needs a C++ compiler"
)


class Rotating(nn.Module):
    """A rotation plus a random small MLP: every trajectory from the unit circle crosses x = -c."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2)).to(D)
        with torch.no_grad():
            for p in self.net.parameters():
                p.copy_(0.2 * torch.randn(p.shape, generator=g, dtype=D))

    def forward(self, t, y):
        return torch.stack([y[..., 1], -y[..., 0]], -1) + self.net(y)


def _solve(field, y0, t, threshold, gradient, compile, method="dopri5"):
    y0 = y0.clone().requires_grad_(True)
    sol = odeflow.solve(
        field,
        y0,
        t,
        method=method,
        step=Adaptive(rtol=1e-8, atol=1e-10),
        gradient=gradient,
        events=lambda tt, y: y[..., 0].mean() + threshold,
        compile=compile,
    )
    w = torch.linspace(-1.0, 1.0, sol.ys.numel(), dtype=D).reshape(sol.ys.shape)
    loss = (sol.ys * w).sum() + 3.0 * sol.event_t
    grads = torch.autograd.grad(loss, [y0, *field.parameters()])
    return sol, grads


@needs_cxx
@pytest.mark.parametrize(
    "gradient, method",
    [
        (DiscretizeOptimize(), "dopri5"),
        pytest.param(OptimizeDiscretize(), "dopri5", marks=pytest.mark.slow),  # slow: two more compiles
        pytest.param(DiscretizeOptimize(), "radauIIA5", marks=pytest.mark.slow),  # its Newton compiled
    ],
    ids=["backprop", "adjoint", "implicit"],
)
def test_compiled_event_solve_equals_eager(gradient, method):
    seed = 3
    g = torch.Generator().manual_seed(seed)
    field = Rotating(seed)
    angle = torch.rand(2, generator=g, dtype=D) * 0.5
    y0 = torch.stack([torch.cos(angle), torch.sin(angle)], -1)
    threshold = float(0.3 + 0.4 * torch.rand((), generator=g, dtype=D))
    t = torch.linspace(0.0, 6.0, 7, dtype=D)
    eager, g_eager = _solve(field, y0, t, threshold, gradient, compile=False, method=method)
    compiled, g_compiled = _solve(field, y0, t, threshold, gradient, compile=True, method=method)
    assert eager.status == compiled.status == "event"
    assert compiled.compiled and not eager.compiled
    torch.testing.assert_close(compiled.event_t, eager.event_t, rtol=0, atol=1e-12)
    torch.testing.assert_close(compiled.ts, eager.ts, rtol=0, atol=1e-12)
    torch.testing.assert_close(compiled.ys, eager.ys, rtol=0, atol=1e-10)
    for a, b in zip(g_compiled, g_eager):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)
    # the search counts its evaluations in both modes
    assert compiled.stats.accepted == eager.stats.accepted
    assert compiled.stats.nfe == eager.stats.nfe


def test_events_compile_refusals_name_the_fix():
    field, y0, t = Rotating(0), torch.tensor([1.0, 0.0], dtype=D), torch.linspace(0, 6, 4, dtype=D)
    event = lambda tt, y: y[0] + 0.5  # noqa: E731
    with pytest.raises(ValueError, match="fixed steps.*dopri5.*compile=False"):
        odeflow.solve(field, y0, t, method="rk4", step=FixedStep(0.1), events=event, compile=True)
    with pytest.raises(ValueError, match="explicit_adams.*compile=False"):
        odeflow.solve(field, y0, t, method="explicit_adams", step=FixedStep(0.1), events=event, compile=True)


def test_auto_may_compile_adaptive_explicit_event_solves():
    field = Rotating(0)
    event = lambda tt, y: y[0]  # noqa: E731
    assert compile_possible(field, "dopri5", Adaptive(), None, event) in (None, "no C++ compiler")
    assert compile_possible(field, "tsit5", None, OptimizeDiscretize(), event) in (None, "no C++ compiler")
    assert compile_possible(field, "rk4", FixedStep(0.1), None, event) == "events with fixed steps"
    assert compile_possible(field, "radauIIA5", None, None, event) in (None, "no C++ compiler")
    assert "explicit_adams" in compile_possible(field, "explicit_adams", FixedStep(0.1), None, event)
