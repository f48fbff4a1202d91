"""Step options of the drop-in against torchdiffeq: min_step (a step at min_step is taken
whatever its error), grid_constructor in the adjoint's backward solve, scipy_solver's
min_step / max_step."""

import math

import pytest
import torch

import odeflow

torchdiffeq = pytest.importorskip("torchdiffeq")
D = torch.float64


@pytest.mark.parametrize("min_step", [0.02, 0.05, 0.1])
@pytest.mark.parametrize("reverse", [False, True])
def test_min_step_goes_on_at_min_step_like_torchdiffeq(min_step, reverse):
    """A stiff-ish field with tight tolerances: the controller wants steps far below min_step;
    both libraries take min_step and go on (no error), with the same number of evaluations."""
    t = torch.tensor([1.0, 0.0] if reverse else [0.0, 1.0], dtype=D)
    out = []
    for lib in (odeflow, torchdiffeq):
        nfe = [0]

        def f(tt, y, rate=20.0 if reverse else -20.0):  # stable in the direction of integration
            nfe[0] += 1
            return rate * (y - torch.cos(tt))

        ys = lib.odeint(f, torch.ones(1, dtype=D), t, rtol=1e-10, atol=1e-12, options=dict(min_step=min_step))
        out.append((ys[-1].item(), nfe[0]))
    assert out[0][1] == out[1][1]
    assert abs(out[0][0] - out[1][0]) < 1e-10 and abs(out[0][0]) < 2


def test_min_step_in_solve_is_a_floor_not_an_error():
    sol = odeflow.solve(
        lambda t, y: -50 * (y - torch.cos(t)),
        torch.ones(1, dtype=D),
        torch.tensor([0.0, 1.0], dtype=D),
        step=odeflow.Adaptive(rtol=1e-10, atol=1e-12, min_step=0.05),
    )
    assert sol.stats.rejected == 0 and sol.stats.accepted <= 21
    exact = 2500 / 2501 * math.cos(1.0) + 50 / 2501 * math.sin(1.0)  # the slow manifold, reached long before t = 1
    assert abs(sol.ys[-1].item() - exact) < 1e-3


class Field(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.k = torch.nn.Parameter(torch.tensor(1.3, dtype=D))

    def forward(self, t, y):
        return -self.k * y * torch.cos(t)


@pytest.mark.parametrize("method", ["rk4", "midpoint", "implicit_adams", "radauIIA5"])
@pytest.mark.parametrize("reverse", [False, True])
def test_grid_constructor_steps_the_adjoint_backward_solve(method, reverse):
    """odeint_adjoint with grid_constructor: the backward solve is stepped on the constructor's
    grid of each output interval (as torchdiffeq's), so its gradient is that of a fine solve."""
    grid = lambda func, y0, t: torch.linspace(float(t[0]), float(t[-1]), 21, dtype=t.dtype)  # noqa: E731
    t = torch.tensor([0.0, 0.7, 2.0], dtype=D)
    t = t.flip(0) if reverse else t
    grads = {}
    libs = [("odeflow", odeflow, "odeint"), ("odeflow", odeflow, "odeint_adjoint")]
    if method in ("rk4", "midpoint", "implicit_adams"):
        libs.append(("torchdiffeq", torchdiffeq, "odeint_adjoint"))
    for name, lib, iface in libs:
        f = Field()
        y0 = torch.tensor([1.0, 2.0], dtype=D, requires_grad=True)
        ys = getattr(lib, iface)(f, y0, t, method=method, options=dict(grid_constructor=grid))
        grads[(name, iface)] = torch.cat([g.reshape(-1) for g in torch.autograd.grad(ys.sum(), (y0, f.k))])
    ours = grads[("odeflow", "odeint_adjoint")]
    # adjoint vs backprop through the same grid: the discretisation error (before: 0.59 off)
    assert torch.allclose(ours, grads[("odeflow", "odeint")], rtol=1e-2 if method == "midpoint" else 1e-4, atol=1e-4)
    if ("torchdiffeq", "odeint_adjoint") in grads:
        assert torch.allclose(ours, grads[("torchdiffeq", "odeint_adjoint")], atol=1e-8)


@pytest.mark.parametrize("options", [dict(min_step=1e-3), dict(max_step=0.01), dict(min_step=1e-4, max_step=0.05)])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_scipy_lsoda_min_max_step_like_torchdiffeq(options, reverse, dtype):
    pytest.importorskip("scipy")
    t = torch.tensor([1.0, 0.0] if reverse else [0.0, 1.0], dtype=dtype)
    out = []
    for lib in (odeflow, torchdiffeq):
        f = Field().to(dtype)
        y0 = torch.tensor([1.0, 2.0], dtype=dtype, requires_grad=True)
        ys = lib.odeint_adjoint(f, y0, t, method="scipy_solver", options=dict(solver="LSODA", **options))
        grads = torch.autograd.grad(ys[-1].sum(), (y0, f.k))
        out.append(torch.cat([ys[-1].detach(), *[g.reshape(-1) for g in grads]]))
    tol = 1e-6 if dtype == torch.float64 else 1e-5
    assert torch.allclose(out[0], out[1], atol=tol)
    exact = math.exp(-1.3 * (math.sin(float(t[1])) - math.sin(float(t[0]))))
    assert abs(out[0][0].item() - exact) < 1e-5


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("max_step", [math.inf, 5.0])
def test_min_step_bounds_the_evaluations_on_a_linear_problem(seed, max_step):
    """torchdiffeq's TestMinMaxStep: y' = A y (A = U - U^T, U ~ 0.1 N(0, 1), 10 x 10) over
    [1, 8] with 10 outputs: with min_step=2 dopri5 takes fewer than 50 evaluations (every step
    at least 2 long), without it more than 100 (rtol=1e-7)."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(10, 10, generator=g, dtype=D) * 0.1
    a = u - u.T
    t = torch.linspace(1, 8, 10, dtype=D)
    for min_step, check in ((0.0, lambda n: n > 100), (2.0, lambda n: n < 50)):
        nfe = [0]

        def f(tt, y):
            nfe[0] += 1
            return a @ y

        ys = odeflow.odeint(f, torch.ones(10, dtype=D), t, options=dict(min_step=min_step, max_step=max_step))
        assert check(nfe[0]), (min_step, nfe[0])
        exact = torch.linalg.matrix_exp(a * 7.0) @ torch.ones(10, dtype=D)
        assert float((ys[-1] - exact).abs().max()) < (1e-5 if min_step == 0 else 0.1)


@pytest.mark.parametrize("method", ["rk4", "euler", "midpoint"])
def test_step_size_grid_moves_with_t0_in_time_gradients(method):
    """torchdiffeq's step_size grid is t0 + k h: dL/dt0 moves every grid point (an output time off
    the grid included), as central differences of the solve itself show."""
    g = torch.Generator().manual_seed(3)
    a = torch.randn(2, 2, generator=g, dtype=torch.float64) * 0.5
    f = lambda t, y: y @ a + torch.sin(t)  # noqa: E731
    y0 = torch.randn(2, generator=g, dtype=torch.float64)
    opts = dict(step_size=0.05)
    t = torch.tensor([0.3, 0.93, 1.4], dtype=torch.float64, requires_grad=True)
    out = odeflow.odeint(f, y0, t, method=method, options=opts)
    (grad,) = torch.autograd.grad(out[1].sum(), t)
    eps = 1e-6
    shift = torch.tensor([eps, 0.0, 0.0], dtype=torch.float64)
    fd = (
        odeflow.odeint(f, y0, t.detach() + shift, method=method, options=opts)[1].sum()
        - odeflow.odeint(f, y0, t.detach() - shift, method=method, options=opts)[1].sum()
    ) / (2 * eps)
    assert float(grad[0]) == pytest.approx(float(fd), rel=1e-6, abs=1e-8)
