"""torchdiffeq's options through the drop-in: each one changes what torchdiffeq says it changes."""

import warnings

import pytest
import torch
from torch import nn

import odeflow

torchdiffeq = pytest.importorskip("torchdiffeq")
D = torch.float64
T = torch.linspace(0, 1, 5, dtype=D)


def decay(t, y):
    return -y


def both(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return odeflow.odeint(*args, **kwargs), torchdiffeq.odeint(*args, **kwargs)


class Counting(nn.Module):
    """f with a jump at t = 0.5 (sign of the forcing flips) that records its evaluation times."""

    def __init__(self):
        super().__init__()
        self.times = []

    def forward(self, t, y):
        self.times.append(float(t))
        return torch.where(t < 0.5, torch.ones_like(y), -torch.ones_like(y))


@pytest.mark.parametrize("reverse", [False, True])
def test_norm_callable_is_used_for_step_control(reverse):
    calls = []

    def linf(x):
        calls.append(1)
        return x.abs().max()

    t = T.flip(0) if reverse else T
    ours, theirs = both(decay, torch.ones(3, dtype=D), t, options=dict(norm=linf), rtol=1e-8, atol=1e-10)
    assert calls and torch.allclose(ours, theirs, atol=1e-7)


def test_jump_t_lands_on_the_discontinuity_and_restarts_f():
    """y' = +1 before 0.5, -1 after: with jump_t the solve is exact (each step sees one side)."""
    t = torch.tensor([0.0, 1.0], dtype=D)
    y0 = torch.zeros(1, dtype=D)
    f = Counting()
    out = odeflow.odeint(f, y0, t, options=dict(jump_t=torch.tensor([0.5], dtype=D)), rtol=1e-6, atol=1e-8)
    assert abs(float(out[-1]) - 0.0) < 1e-12
    theirs = torchdiffeq.odeint(Counting(), y0, t, options=dict(jump_t=torch.tensor([0.5], dtype=D)))
    assert abs(float(theirs[-1]) - float(out[-1])) < 1e-10
    assert any(0.5 < v < 0.5 + 1e-12 for v in f.times)  # f evaluated just after the jump


def test_step_t_makes_steps_land_there():
    f = Counting()
    odeflow.odeint(
        f,
        torch.zeros(1, dtype=D),
        torch.tensor([0.0, 1.0], dtype=D),
        options=dict(step_t=torch.tensor([0.3, 0.7], dtype=D)),
        rtol=1e-4,
        atol=1e-6,
    )
    assert 0.3 in f.times or any(abs(v - 0.3) < 1e-15 for v in f.times)


def test_old_grid_points_option_is_translated_with_a_warning():
    with pytest.warns(UserWarning, match="grid_points"):
        out = odeflow.odeint(
            Counting(),
            torch.zeros(1, dtype=D),
            torch.tensor([0.0, 1.0], dtype=D),
            options=dict(grid_points=torch.tensor([0.5], dtype=D), eps=1e-6),
        )
    assert abs(float(out[-1])) < 1e-12


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("method", ["euler", "midpoint", "rk4"])
def test_perturb_matches_torchdiffeq(method, reverse):
    t = torch.linspace(0, 1, 5, dtype=D)
    t = t.flip(0) if reverse else t
    ours, theirs = both(
        Counting(), torch.zeros(1, dtype=D), t, method=method, options=dict(step_size=0.25, perturb=True)
    )
    assert torch.allclose(ours, theirs, atol=1e-12)


def test_perturb_evaluates_next_to_grid_points():
    f = Counting()
    odeflow.odeint(
        f,
        torch.zeros(1, dtype=D),
        torch.tensor([0.0, 1.0], dtype=D),
        method="euler",
        options=dict(step_size=0.5, perturb=True),
    )
    assert f.times[1] > 0.5  # the step starting at 0.5 sees the right-hand side of the jump


@pytest.mark.parametrize("interp", ["linear", "cubic"])
@pytest.mark.parametrize("reverse", [False, True])
def test_step_size_off_the_output_grid_interpolates_like_torchdiffeq(interp, reverse):
    t = torch.tensor([0.0, 0.33, 0.71, 1.0], dtype=D)
    t = t.flip(0) if reverse else t
    func = lambda t, y: torch.sin(t) * y  # noqa: E731
    ours, theirs = both(func, torch.ones(2, dtype=D), t, method="rk4", options=dict(step_size=0.1, interp=interp))
    assert torch.allclose(ours, theirs, atol=1e-13)


def test_grid_constructor_is_called_and_used():
    seen = []

    def grid(func, y0, t):
        seen.append(len(t))
        return torch.linspace(float(t[0]), float(t[-1]), 41, dtype=t.dtype)

    for rev in (False, True):
        t = T.flip(0) if rev else T
        ours, theirs = both(
            lambda t, y: -y * t, torch.ones(1, dtype=D), t, method="midpoint", options=dict(grid_constructor=grid)
        )
        assert torch.allclose(ours, theirs, atol=1e-13)
    assert seen


def test_step_size_and_grid_constructor_are_exclusive():
    with pytest.raises(ValueError, match="mutually exclusive"):
        odeflow.odeint(
            decay, torch.ones(1), T, method="euler", options=dict(step_size=0.1, grid_constructor=lambda f, y, t: t)
        )


def test_first_step_max_num_steps_min_max_step():
    y0 = torch.ones(1, dtype=D)
    out = odeflow.odeint(
        decay,
        y0,
        T,
        options=dict(first_step=0.1, max_num_steps=1000, safety=0.8, ifactor=5.0, dfactor=0.3, max_step=0.05),
    )
    assert torch.allclose(out[:, 0], torch.exp(-T), atol=1e-7)
    with pytest.raises(odeflow.SolverError):
        odeflow.odeint(decay, y0, T, options=dict(max_num_steps=2))


def test_dtype_option_float64_is_silent_and_others_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        odeflow.odeint(decay, torch.ones(1), T.float(), options=dict(dtype=torch.float64))
    with pytest.warns(UserWarning, match="float64"):
        odeflow.odeint(decay, torch.ones(1), T.float(), options=dict(dtype=torch.float32))


def test_adaptive_method_ignores_step_size_with_a_warning_like_torchdiffeq():
    with pytest.warns(UserWarning, match="step_size"):
        out = odeflow.odeint(decay, torch.ones(1, dtype=D), T, method="dopri5", options=dict(step_size=0.5))
    assert torch.allclose(out[:, 0], torch.exp(-T), atol=1e-7)


def test_seminorm_is_adjoint_only():
    with pytest.raises(ValueError, match="seminorm"):
        odeflow.odeint(decay, torch.ones(1), T, options=dict(norm="seminorm"))


def test_per_component_tolerances_for_tuple_states():
    func = lambda t, s: (-s[0], -2 * s[1])  # noqa: E731
    y0 = (torch.ones(2, dtype=D), torch.ones(3, dtype=D))
    ours, theirs = both(func, y0, T, rtol=(1e-8, 1e-6), atol=(1e-10, 1e-8))
    for a, b in zip(ours, theirs):
        assert torch.allclose(a, b, atol=1e-6)


def test_tensor_tolerances_per_element():
    y0 = torch.ones(3, dtype=D)
    out = odeflow.odeint(decay, y0, T, rtol=torch.tensor([1e-8, 1e-8, 1e-3], dtype=D), atol=1e-10)
    assert torch.allclose(out[:, 0], torch.exp(-T), atol=1e-7)


def test_adjoint_norm_callable_receives_torchdiffeq_layout():
    seen = []

    def norm(parts):
        seen.append(len(parts))
        return max(p.abs().max() for p in parts)

    w = nn.Parameter(torch.tensor(-1.0, dtype=D))
    f = lambda t, y: w * y  # noqa: E731
    y0 = torch.ones(2, dtype=D, requires_grad=True)
    out = odeflow.odeint_adjoint(f, y0, T, adjoint_params=(w,), adjoint_options=dict(norm=norm))
    g = torch.autograd.grad(out[-1].sum(), (y0, w))
    assert seen and set(seen) == {4}  # (t, y, adj_y, w)
    assert abs(float(g[1]) - 2 * torch.exp(torch.tensor(-1.0)).item()) < 1e-6  # d/dw 2 exp(w T), T = 1


def test_func_without_parameters_independent_of_y_does_not_crash_the_adjoint():
    """f(t, y) = -0.1 exp(-0.1 t): the adjoint's vector-Jacobian products are all zero."""
    y0 = torch.tensor([1.0], dtype=D, requires_grad=True)
    t = torch.linspace(0, 2, 4, dtype=D, requires_grad=True)
    out = odeflow.odeint_adjoint(lambda t, y: -0.1 * torch.exp(-0.1 * t) * torch.ones_like(y), y0, t, adjoint_params=())
    gy, gt = torch.autograd.grad(out.sum(), (y0, t))
    assert float(gy) == 4.0
    assert torch.allclose(gt[1:], -0.1 * torch.exp(-0.1 * t[1:].detach()), atol=1e-8)
