"""Complex-valued states (as torchdiffeq supports them): y' = i w cos(t) y, y = y0 exp(i w sin t)."""

import pytest
import torch

import odeflow

C = torch.complex128
W = torch.tensor(1.0 + 0.5j, dtype=C)
T = torch.linspace(0, 2, 5, dtype=torch.float64)


def field(t, y):
    assert not t.is_complex()  # times stay real
    return 1j * W * torch.cos(t) * y


def exact(y0, t):
    return y0[None] * torch.exp(1j * W * torch.sin(t))[:, None]


@pytest.mark.parametrize(
    "method,step,tol",
    [
        ("dopri5", odeflow.Adaptive(1e-9, 1e-11), 1e-7),
        ("tsit5", odeflow.Adaptive(1e-9, 1e-11), 1e-7),
        ("rk4", odeflow.FixedStep(0.01), 1e-8),
        ("radauIIA5", odeflow.Adaptive(1e-9, 1e-11), 1e-7),
        ("implicit_adams", odeflow.FixedStep(0.01), 1e-7),
    ],
)
@pytest.mark.parametrize("gradient", ["disc-opt", "opt-disc"])
def test_complex_state_solution_and_gradient(method, step, tol, gradient):
    y0 = torch.tensor([1.0 + 0j, 0.5 - 0.2j], dtype=C, requires_grad=True)
    grad = odeflow.DiscretizeOptimize() if gradient == "disc-opt" else odeflow.OptimizeDiscretize(params=())
    sol = odeflow.solve(field, y0, T, method=method, step=step, gradient=grad)
    assert sol.ys.dtype == C
    assert float((sol.ys - exact(y0, T)).abs().max()) < tol
    # |y(T)|^2 = |y0|^2 exp(-2 Im(w) sin T): its gradient w.r.t. y0 (conjugate Wirtinger, as torch) is 2 y0 * that
    g = torch.autograd.grad(sol.ys[-1].abs().pow(2).sum(), y0)[0]
    factor = torch.exp(-2 * W.imag * torch.sin(T[-1]))
    assert torch.allclose(g, 2 * y0.detach() * factor, atol=100 * tol)


def test_complex_matches_torchdiffeq():
    torchdiffeq = pytest.importorskip("torchdiffeq")
    y0 = torch.tensor([1.0 + 0j, 0.5 - 0.2j], dtype=C)
    for method, options in (("dopri5", None), ("rk4", dict(step_size=0.05))):
        ours = odeflow.odeint(field, y0, T, method=method, options=options)
        theirs = torchdiffeq.odeint(field, y0, T, method=method, options=options)
        assert torch.allclose(ours, theirs, atol=1e-6)
