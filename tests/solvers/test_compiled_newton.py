"""compile=True with implicit Runge–Kutta methods: each step's Newton iteration (Jacobian, LU,
iterations) is one compiled call; values, gradients and statistics equal the eager solve's."""

import shutil

import pytest
import torch

import odeflow
from odeflow import Adaptive, FixedStep, OptimizeDiscretize
from odeflow.compiling import compile_possible
from odeflow.solvers import compiled_newton
from odeflow.solvers.compiled_newton import jacobian_blocks_func
from odeflow.solvers.implicit import IMPLICIT_METHODS, jacobian_blocks

D = torch.float64
needs_cxx = pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None, reason="compile=True needs a C++ compiler"
)


class VanDerPol(torch.nn.Module):
    def __init__(self, mu: torch.Tensor) -> None:
        super().__init__()
        self.mu = torch.nn.Parameter(mu)

    def forward(self, t, y):
        x, v = y[..., 0], y[..., 1]
        return torch.stack([v, self.mu * (1 - x * x) * v - x], -1)


def _stiff_batch(seed: int, batch: int):
    """Van der Pol rows with random stiffness mu in [5, 200] and random starts."""
    g = torch.Generator().manual_seed(seed)
    f = VanDerPol(5.0 + 195.0 * torch.rand(batch, generator=g, dtype=D))
    y0 = torch.stack([1.5 + torch.rand(batch, generator=g, dtype=D), torch.zeros(batch, dtype=D)], -1)
    return f, y0.requires_grad_(True), f.mu


def _solve(method, step, compile, seed=0, adjoint=False):
    f, y0, mu = _stiff_batch(seed, 4)
    gradient = OptimizeDiscretize() if adjoint else None
    sol = odeflow.solve(
        f, y0, torch.linspace(0.0, 1.0, 6, dtype=D), method=method, step=step, compile=compile, gradient=gradient
    )
    w = torch.linspace(-1.0, 1.0, sol.ys.numel(), dtype=D).reshape(sol.ys.shape)
    grads = torch.autograd.grad((sol.ys * w).sum(), [y0, mu])
    return sol, grads


def _count_compiled_calls(monkeypatch):
    calls = []
    original = compiled_newton.CompiledNewton.__call__

    def spy(self, *args):
        calls.append(1)
        return original(self, *args)

    monkeypatch.setattr(compiled_newton.CompiledNewton, "__call__", spy)
    return calls


@needs_cxx
def test_compiled_newton_equals_eager_with_gradients(monkeypatch):
    method = IMPLICIT_METHODS["radauIIA5"].with_options(jacobian="batched")
    step = Adaptive(rtol=1e-6, atol=1e-8)
    eager, g_eager = _solve(method, step, False)
    calls = _count_compiled_calls(monkeypatch)
    compiled, g_compiled = _solve(method, step, True)
    assert len(calls) >= compiled.stats.steps  # every attempted step's Newton went through it
    assert compiled.stats.as_dict() == eager.stats.as_dict()  # same steps, rejections and evaluations
    torch.testing.assert_close(compiled.ys, eager.ys, rtol=1e-12, atol=1e-12)
    for a, b in zip(g_compiled, g_eager):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.slow  # three more compiles
@needs_cxx
@pytest.mark.parametrize(
    "method, step, adjoint",
    [
        ("radauIIA3", Adaptive(rtol=1e-5, atol=1e-7), False),  # the full Jacobian
        ("implicit_euler", FixedStep(0.02), False),
        ("sdirk2", Adaptive(rtol=1e-5, atol=1e-7), True),  # the adjoint's forward solve compiled
    ],
)
def test_compiled_newton_other_methods_and_modes(method, step, adjoint):
    eager, g_eager = _solve(method, step, False, seed=1, adjoint=adjoint)
    compiled, g_compiled = _solve(method, step, True, seed=1, adjoint=adjoint)
    assert compiled.stats.as_dict() == eager.stats.as_dict()
    torch.testing.assert_close(compiled.ys, eager.ys, rtol=1e-11, atol=1e-11)
    for a, b in zip(g_compiled, g_eager):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("batched", [False, True])
def test_the_functional_jacobian_equals_autograds(batched):
    f, y0, _ = _stiff_batch(2, 3)
    t = torch.tensor(0.3, dtype=D)
    torch.testing.assert_close(
        jacobian_blocks_func(f, t, y0.detach(), batched), jacobian_blocks(f, t, y0.detach(), batched)
    )


def test_auto_may_compile_implicit_runge_kutta():
    f, _, _ = _stiff_batch(0, 2)
    for method, step in (("radauIIA5", Adaptive()), ("implicit_euler", FixedStep(0.1))):
        assert compile_possible(f, method, step, None, None) in (None, "no C++ compiler")
