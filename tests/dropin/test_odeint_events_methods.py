"""Events with every method of the drop-in (Adams, implicit RK, explicit RK; both directions,
float32 and float64, odeint and odeint_adjoint), compared with the exact event time and its
gradients, and with torchdiffeq for the methods it has."""

import math

import pytest
import torch

import odeflow

D = torch.float64
ADAMS = ["implicit_adams", "fixed_adams"]  # explicit_adams of order 11 is unstable at this step, in torchdiffeq too
IMPLICIT = [
    "implicit_euler",
    "implicit_midpoint",
    "trapezoid",
    "radauIIA3",
    "radauIIA5",
    "gl4",
    "gl6",
    "sdirk2",
    "trbdf2",
]
H = 0.04
# Tolerance on the event time, its state and its gradients at step H, about 4x the largest error
# measured over both directions and dtypes: first order ~H, second ~H^2/10, the others at the
# cubic dense output's ~H^4 (float32 rounding ~1e-7 included).
TOL = {"implicit_euler": 0.1, "implicit_midpoint": 1.5e-3, "trapezoid": 1.5e-3, "sdirk2": 1e-3, "trbdf2": 1e-3}


def tol_for(method):
    return TOL.get(method, 1.5e-5)


def decay_problem(dtype, seed):
    """y' = -k y from y0 = (a, b): the event y_0 = c (c < a forward, c > a backward) happens at
    t_e = ln(a / c) / k, and y_1(t_e) = b c / a; randomised a, b, k."""
    gen = torch.Generator().manual_seed(seed)
    a, b, k = (float(v) for v in 0.5 + torch.rand(3, generator=gen, dtype=D))
    return a, b, k


@pytest.mark.parametrize("method", ADAMS + IMPLICIT)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_odeint_event_every_method_time_and_gradients(method, reverse, dtype):
    a, b, k0 = decay_problem(dtype, hash((method, reverse)) % 1000)
    c = a * (3.0 if reverse else 0.3)
    k = torch.tensor(k0, dtype=dtype, requires_grad=True)
    y0 = torch.tensor([a, b], dtype=dtype, requires_grad=True)
    t_e, sol = odeflow.odeint_event(
        lambda t, y: -k * y,
        y0,
        torch.tensor(0.0, dtype=dtype),
        event_fn=lambda t, y: y[0] - c,
        reverse_time=reverse,
        method=method,
        options=dict(step_size=H),
    )
    exact = math.log(a / c) / k0
    tol = tol_for(method)
    assert sol.shape == (2, 2) and t_e.dtype == dtype
    assert abs(t_e.item() - exact) < tol
    assert abs(sol[-1, 1].item() - b * c / a) < tol
    d_y0, d_k = torch.autograd.grad(t_e, (y0, k))
    # dt_e/dk = -t_e / k, dt_e/da = 1 / (a k), dt_e/db = 0
    assert abs(d_k.item() + exact / k0) < tol
    assert abs(d_y0[0].item() - 1 / (a * k0)) < tol and abs(d_y0[1].item()) < tol


@pytest.mark.parametrize("method", ["implicit_adams", "radauIIA5", "gl4", "trbdf2", "implicit_euler", "rk4"])
@pytest.mark.parametrize("reverse", [False, True])
def test_odeint_event_under_the_adjoint_every_method(method, reverse):
    """odeint_event(odeint_interface=odeint_adjoint): the backward solve uses the forward's options
    (step_size) as torchdiffeq does, so gradients agree with odeint's to the discretisation."""
    a, b, k0 = decay_problem(D, 7)
    c = a * (3.0 if reverse else 0.3)
    grads = []
    for iface in (odeflow.odeint, odeflow.odeint_adjoint):
        k = torch.tensor(k0, dtype=D, requires_grad=True)
        y0 = torch.tensor([a, b], dtype=D, requires_grad=True)
        kw = dict(adjoint_params=(k,)) if iface is odeflow.odeint_adjoint else {}
        t_e, sol = odeflow.odeint_event(
            lambda t, y: -k * y,
            y0,
            torch.tensor(0.0, dtype=D),
            event_fn=lambda t, y: y[0] - c,
            reverse_time=reverse,
            odeint_interface=iface,
            method=method,
            options=dict(step_size=H),
            **kw,
        )
        grads.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(t_e + sol[-1, 1], (y0, k))]))
    tol = TOL.get(method, 1e-6)
    assert torch.allclose(grads[0], grads[1], atol=tol), (grads[0], grads[1])
    exact_dk = -math.log(a / c) / k0**2  # d t_e/dk = -t_e/k; y_1(t_e) = b c / a does not depend on k
    assert abs(float(grads[1][2]) - exact_dk) < tol


@pytest.mark.parametrize("method", ["radauIIA5", "sdirk2", "trbdf2"])
@pytest.mark.parametrize("gradient", ["disc-opt", "opt-disc"])
def test_solve_events_with_adaptive_implicit_methods(method, gradient):
    """solve(events=...) with adaptive implicit steps: the falling ball hits the ground at
    t_e = sqrt(2 h0 / g), with dt_e/dg = -t_e / (2 g)."""
    g = torch.tensor(9.81, dtype=D, requires_grad=True)
    y0 = torch.tensor([10.0, 0.0], dtype=D, requires_grad=True)
    grad = odeflow.DiscretizeOptimize() if gradient == "disc-opt" else odeflow.OptimizeDiscretize(params=[g])
    sol = odeflow.solve(
        lambda t, y: torch.stack([y[1], -g * torch.ones_like(y[0])]),
        y0,
        torch.tensor([0.0, 5.0], dtype=D),
        method=method,
        step=odeflow.Adaptive(1e-8, 1e-10),
        gradient=grad,
        events=odeflow.Event(lambda t, y: y[0], direction=-1),
    )
    te = math.sqrt(20 / 9.81)
    assert sol.status == "event" and abs(float(sol.event_t) - te) < 1e-6
    (d_g,) = torch.autograd.grad(sol.event_t, (g,))
    assert abs(float(d_g) + te / (2 * 9.81)) < 1e-5


@pytest.mark.parametrize("method", ["implicit_adams", "explicit_adams"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_adams_event_matches_torchdiffeq(method, reverse, dtype):
    torchdiffeq = pytest.importorskip("torchdiffeq")
    a, b, k0 = decay_problem(dtype, 3)
    c = a * (3.0 if reverse else 0.3)
    out = []
    for lib in (odeflow, torchdiffeq):
        y0 = torch.tensor([a, b], dtype=dtype, requires_grad=True)
        t_e, sol = lib.odeint_event(
            lambda t, y: -k0 * y,
            y0,
            torch.tensor(0.0, dtype=dtype),
            event_fn=lambda t, y: y[0] - c,
            reverse_time=reverse,
            method=method,
            options=dict(step_size=H, max_order=4),
            atol=1e-9,
        )
        out.append((float(t_e), torch.autograd.grad(t_e, y0)[0]))
    # torchdiffeq bisects on a linear interpolant (error ~ h^2/8 |y''|); here the root is on a cubic.
    assert abs(out[0][0] - out[1][0]) < H**2
    assert torch.allclose(out[0][1], out[1][1], atol=0.05)


@pytest.mark.parametrize(
    "rate,level,h", [(1.0, 5.0, 1e-3), (1.0, 1.0, 1e-3), (3.0, 2.0, 1e-3), (0.5, 2.0, 1e-2), (0.7, 3.3, 5e-4)]
)
def test_rk4_float32_constant_rate_event_is_accurate(rate, level, h):
    """y' = rate, y(0) = 0: the event y = level is at level / rate. In float32 over thousands of
    fixed steps the state is summed with compensation, so the event time stays exact to ~1e-6."""
    t_e, sol = odeflow.odeint_event(
        lambda t, y: torch.full_like(y, rate),
        torch.zeros(1),
        torch.tensor(0.0),
        event_fn=lambda t, y: y[0] - level,
        method="rk4",
        options=dict(step_size=h),
    )
    exact = level / rate
    assert abs(float(t_e) - exact) / exact < 2e-6
    assert abs(float(sol[-1, 0]) - level) / level < 2e-6


def test_adjoint_event_time_is_in_the_graph_with_zero_gradient():
    """odeint_adjoint(event_fn=...) (not odeint_event): torchdiffeq returns event_t from its adjoint
    node, so autograd.grad(event_t, params) gives zeros instead of raising."""
    k = torch.tensor(1.0, dtype=D, requires_grad=True)
    t_e, sol = odeflow.odeint_adjoint(
        lambda t, y: -k * y,
        torch.tensor([1.0, 2.0], dtype=D),
        torch.tensor([0.0, 1.0], dtype=D),
        event_fn=lambda t, y: y[0] - 0.2,
        adjoint_params=(k,),
    )
    assert abs(float(t_e) - math.log(5.0)) < 1e-7
    (d_k,) = torch.autograd.grad(t_e, k)
    assert float(d_k) == 0.0


def test_events_with_scipy_solver_name_the_methods_that_work():
    with pytest.raises(ValueError, match="scipy_solver"):
        odeflow.odeint_event(
            lambda t, y: -y,
            torch.ones(1, dtype=D),
            torch.tensor(0.0, dtype=D),
            event_fn=lambda t, y: y[0] - 0.5,
            method="scipy_solver",
        )


class _Sine(torch.nn.Module):
    """y' = 2y/t + t^4 sin(2t) - t^2 + 4t^3 (torchdiffeq's sine test problem), exact solution known."""

    def forward(self, t, y):
        return 2 * y / t + t**4 * torch.sin(2 * t) - t**2 + 4 * t**3

    @staticmethod
    def exact(t):
        return (
            -0.5 * t**4 * torch.cos(2 * t)
            + 0.5 * t**3 * torch.sin(2 * t)
            + 0.25 * t**2 * torch.cos(2 * t)
            - t**3
            + 2 * t**4
            + (math.pi - 0.25) * t**2
        )


def _first_crossing(level: float, start: float, direction: float) -> float:
    """The first time from ``start`` where the exact solution crosses ``level`` (fine scan + bisection)."""
    ts = start + direction * torch.linspace(0, 7, 70001, dtype=torch.float64)
    g = _Sine.exact(ts) - level
    k = int(torch.nonzero(torch.sign(g[1:]) != torch.sign(g[:-1]))[0])
    a, b = float(ts[k]), float(ts[k + 1])
    for _ in range(60):
        m = 0.5 * (a + b)
        same = (float(_Sine.exact(torch.tensor(m, dtype=torch.float64))) - level) * float(g[k]) > 0
        a, b = (m, b) if same else (a, m)
    return 0.5 * (a + b)


@pytest.mark.parametrize("method", ["explicit_adams", "implicit_adams"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("t_grad", [False, True])
def test_adams_event_state_is_the_located_root(method, dtype, reverse, t_grad):
    """The state returned at an Adams event is the one the root was located on (the search's
    grid and polynomial), so the event function is zero there to rounding, even where
    explicit_adams of order 11 is unstable (h = 0.01 here; its event time can then be far off,
    in torchdiffeq too: 6.2e-2 relative in float32 forward on its sine test); implicit_adams
    finds the exact solution's first crossing."""
    gen = torch.Generator().manual_seed(int(reverse) + 2 * int(t_grad) + 4 * (dtype == torch.float32))
    start, direction = (8.0, -1.0) if reverse else (1.0, 1.0)
    for _ in range(1):
        t_target = float(2.0 + 4.0 * torch.rand((), generator=gen, dtype=torch.float64))
        level64 = float(_Sine.exact(torch.tensor(t_target, dtype=torch.float64)))
        level = torch.tensor(level64, dtype=dtype)
        first = _first_crossing(float(level), start, direction)
        t_span = torch.tensor([start, start + 0.5 * direction], dtype=dtype, requires_grad=t_grad)
        y0 = _Sine.exact(torch.tensor(start, dtype=torch.float64)).to(dtype)
        t_e, ys = odeflow.odeint(
            _Sine(),
            y0,
            t_span,
            event_fn=lambda t, y: y - level,
            method=method,
            options={"step_size": 0.01, "interp": "cubic"},
        )
        # to rounding: of t_e to t's dtype (y moves by ~|f| ulp(t_e)) and of the polynomial's terms
        # (in float32 the unstable explicit_adams' terms are much larger than y); before, a state from
        # a re-solve with a shortened last step was returned: off by 2e-2 (float32), 5e-3 (float64)
        slope = float(_Sine()(t_e.detach().to(torch.float64), ys[-1].detach().to(torch.float64)).abs())
        moved = slope * torch.finfo(dtype).eps * abs(float(t_e))
        rel = 1e-4 if dtype == torch.float32 else 1e-9
        assert abs(float(ys[-1]) - float(level)) <= rel * abs(float(level)) + moved
        if method == "implicit_adams":
            assert abs(float(t_e) - first) < 1e-3 * abs(first)
