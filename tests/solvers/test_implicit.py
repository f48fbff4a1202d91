"""Implicit Runge–Kutta methods: convergence orders, stiff accuracy against scipy, adaptive
steps, batched Jacobians, gradients in both modes."""

import math

import pytest
import torch

import odeflow
from odeflow.solvers.implicit import IMPLICIT_METHODS, jacobian_blocks

D = torch.float64
A = torch.tensor([[-0.5, 2.0], [-2.0, -0.5]], dtype=D)
Y0 = torch.tensor([1.0, 0.5], dtype=D)
T1 = torch.tensor([0.0, 1.0], dtype=D)


def linear(t, y):
    return A @ y


def exact(t):
    return torch.linalg.matrix_exp(A * t) @ Y0


def slope(ns, errs):
    lx = [math.log(1 / n) for n in ns]
    ly = [math.log(e) for e in errs]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


@pytest.mark.parametrize("name", sorted(IMPLICIT_METHODS))
def test_convergence_order(name):
    ns = [8, 16, 32] if IMPLICIT_METHODS[name].order < 6 else [4, 6, 8]
    errs = [
        float((odeflow.solve(linear, Y0, T1, method=name, step=odeflow.FixedStep(1 / n)).ys[-1] - exact(1.0)).norm())
        for n in ns
    ]
    assert abs(slope(ns, errs) - IMPLICIT_METHODS[name].order) < 0.3


def van_der_pol(mu):
    return lambda t, y: torch.stack([y[1], mu * (1 - y[0] ** 2) * y[1] - y[0]])


def scipy_reference(mu, t_end):
    solve_ivp = pytest.importorskip("scipy.integrate").solve_ivp
    sol = solve_ivp(
        lambda t, y: [y[1], mu * (1 - y[0] ** 2) * y[1] - y[0]],
        (0, t_end),
        [2.0, 0.0],
        method="Radau",
        rtol=1e-12,
        atol=1e-12,
    )
    return torch.tensor(sol.y[:, -1], dtype=D)


@pytest.mark.parametrize("name", [n for n, m in sorted(IMPLICIT_METHODS.items()) if m.adaptive])
def test_adaptive_on_stiff_van_der_pol(name):
    """mu = 100 on [0, 1]: stiff for explicit methods; every embedded implicit method reaches the
    scipy Radau reference within its tolerance in a few hundred steps."""
    mu = 100.0
    rtol = 1e-6 if IMPLICIT_METHODS[name].order >= 3 else 1e-4
    sol = odeflow.solve(
        van_der_pol(mu), torch.tensor([2.0, 0.0], dtype=D), T1, method=name, step=odeflow.Adaptive(rtol, rtol * 1e-2)
    )
    ref = scipy_reference(mu, 1.0)
    assert float(((sol.ys[-1] - ref) / ref.abs().clamp(min=1e-3)).abs().max()) < 100 * rtol
    assert sol.stats.accepted < 2000


def test_explicit_method_needs_many_more_steps_on_the_stiff_problem():
    mu = 1000.0
    y0 = torch.tensor([2.0, 0.0], dtype=D)
    implicit = odeflow.solve(van_der_pol(mu), y0, T1, method="radauIIA5", step=odeflow.Adaptive(1e-6, 1e-8))
    explicit = odeflow.solve(van_der_pol(mu), y0, T1, method="dopri5", step=odeflow.Adaptive(1e-6, 1e-8))
    assert explicit.stats.steps > 5 * implicit.stats.steps


def test_batched_jacobian_equals_the_blocks_of_the_full_one():
    w = torch.randn(3, 3, dtype=D)
    f = lambda t, y: torch.tanh(y @ w)  # noqa: E731  rows independent
    y = torch.randn(4, 3, dtype=D)
    t = torch.tensor(0.0, dtype=D)
    full = jacobian_blocks(f, t, y, batched=False)[0]
    blocks = jacobian_blocks(f, t, y, batched=True)
    for b in range(4):
        assert torch.allclose(blocks[b], full[3 * b : 3 * b + 3, 3 * b : 3 * b + 3], atol=1e-12)
    m = IMPLICIT_METHODS["radauIIA5"]
    a = odeflow.solve(f, y, T1, method=m, step=odeflow.FixedStep(0.1)).ys
    b = odeflow.solve(f, y, T1, method=m.with_options(jacobian="batched"), step=odeflow.FixedStep(0.1)).ys
    assert torch.allclose(a, b, atol=1e-9)


@pytest.mark.parametrize("name", ["radauIIA5", "gl4", "trbdf2", "implicit_euler"])
def test_discretize_optimize_gradient_matches_finite_differences(name):
    """Fixed steps: the gradient of the discrete solution (Newton tolerance apart)."""
    w = torch.tensor([1.0, 0.3], dtype=D, requires_grad=True)

    def loss(w):
        f = lambda t, y: (A @ y) * w + 0.1 * y**2  # noqa: E731
        return odeflow.solve(f, Y0, T1, method=name, step=odeflow.FixedStep(0.1)).ys[-1].pow(2).sum()

    g = torch.autograd.grad(loss(w), w)[0]
    eps = 1e-6
    fd = torch.stack(
        [(loss(w.detach() + eps * e) - loss(w.detach() - eps * e)) / (2 * eps) for e in torch.eye(2, dtype=D)]
    )
    assert torch.allclose(g, fd, atol=1e-5)


@pytest.mark.parametrize(
    "name,step",
    [
        ("radauIIA5", odeflow.Adaptive(1e-8, 1e-10)),
        ("gl6", odeflow.FixedStep(0.05)),
        ("sdirk2", odeflow.Adaptive(1e-7, 1e-9)),
    ],
)
def test_optimize_discretize_gradient_matches_the_exact_gradient(name, step):
    w = torch.tensor(-1.5, dtype=D, requires_grad=True)
    y0 = torch.tensor([1.0, 2.0], dtype=D, requires_grad=True)
    f = lambda t, y: w * y  # noqa: E731
    sol = odeflow.solve(f, y0, T1, method=name, step=step, gradient=odeflow.OptimizeDiscretize(params=[w]))
    gy, gw = torch.autograd.grad(sol.ys[-1].sum(), (y0, w))
    e = math.exp(-1.5)
    tol = 1e-4 if name == "sdirk2" else 1e-6
    assert torch.allclose(gy, torch.full((2,), e, dtype=D), atol=tol) and abs(float(gw) - 3 * e) < tol


def test_fixed_only_method_refuses_adaptive_steps():
    with pytest.raises(ValueError, match="gl4"):
        odeflow.solve(linear, Y0, T1, method="gl4", step=odeflow.Adaptive())


def test_adjoint_of_a_stiff_problem_never_integrates_y_backwards():
    """y' = -1000 (y - p sin t): backwards y would explode; the interpolated adjoint keeps few
    backward steps and matches the discretize-optimize gradient of a tight solve."""
    p = torch.tensor(1.3, dtype=D, requires_grad=True)
    f = lambda t, y: -1000.0 * (y - p * torch.sin(t))  # noqa: E731
    t = torch.linspace(0, 2, 3, dtype=D)
    y0 = torch.ones(2, dtype=D)
    sol = odeflow.solve(
        f, y0, t, method="radauIIA5", step=odeflow.Adaptive(1e-7, 1e-9), gradient=odeflow.OptimizeDiscretize(params=[p])
    )
    g_od = torch.autograd.grad(sol.ys.pow(2).sum(), p)[0]
    ref = odeflow.solve(f, y0, t, method="radauIIA5", step=odeflow.Adaptive(1e-10, 1e-12))
    g_ref = torch.autograd.grad(ref.ys.pow(2).sum(), p)[0]
    assert abs(float(g_od - g_ref)) < 1e-5 * abs(float(g_ref))
    assert sol.stats.steps_backward < 4 * sol.stats.steps and sol.stats.nfe_backward > 0  # re-solve + backward


@pytest.mark.parametrize("name", [n for n, m in sorted(IMPLICIT_METHODS.items()) if m.adaptive])
def test_adaptive_batched_state_matches_the_rows_solved_one_by_one(name):
    """A [batch, d] state (the error estimate once came back flat and broke the error norm)."""
    gen = torch.Generator().manual_seed(3)
    a = torch.randn(2, 2, generator=gen, dtype=torch.float64) - 2 * torch.eye(2, dtype=torch.float64)
    y0 = torch.randn(4, 2, generator=gen, dtype=torch.float64)
    t = torch.tensor([0.0, 0.7, 1.5], dtype=torch.float64)
    ys = odeflow.solve(lambda t, y: y @ a.T, y0, t, method=name, step=odeflow.Adaptive(1e-5, 1e-7)).ys
    assert ys.shape == (3, 4, 2)
    exact = torch.stack([y0 @ torch.linalg.matrix_exp(a * float(s)).T for s in t])
    assert torch.allclose(ys, exact, rtol=1e-2, atol=1e-3)
