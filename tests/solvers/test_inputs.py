"""Shapes, dtypes, tuple states, and clear errors for bad input."""

import math

import pytest
import torch

import odeflow
from odeflow import SolverError

T = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)


@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (2, 3, 4)])
@pytest.mark.parametrize("method,step", [("dopri5", odeflow.Adaptive(1e-9, 1e-11)), ("rk4", odeflow.FixedStep(0.01))])
def test_batch_shapes_of_any_rank(shape, method, step):
    y0 = torch.rand(shape, dtype=torch.float64) + 0.5
    sol = odeflow.solve(lambda t, y: -y, y0, T, method=method, step=step)
    assert sol.ys.shape == (3, *shape)
    expected = torch.exp(-T).reshape(-1, *([1] * len(shape))) * y0
    assert torch.allclose(sol.ys, expected, rtol=1e-7)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_state_keeps_its_dtype(dtype):
    y0 = torch.ones(4, dtype=dtype)
    seen = []

    def f(t, y):
        seen.append((t.dtype, y.dtype))
        return -y

    sol = odeflow.solve(f, y0, torch.tensor([0.0, 1.0]))
    assert sol.ys.dtype == dtype
    assert set(seen) == {(dtype, dtype)}
    assert abs(float(sol.ys[-1, 0]) - math.exp(-1)) < (1e-5 if dtype == torch.float32 else 1e-8)


def test_tuple_state():
    y0 = (torch.ones(3, dtype=torch.float64), torch.full((2, 2), 2.0, dtype=torch.float64))
    sol = odeflow.solve(lambda t, s: (-s[0], 0.5 * s[1]), y0, T, step=odeflow.Adaptive(1e-10, 1e-12))
    ys, zs = sol.ys
    assert ys.shape == (3, 3) and zs.shape == (3, 2, 2)
    assert torch.allclose(ys[-1], torch.full((3,), math.exp(-1), dtype=torch.float64))
    assert torch.allclose(zs[-1], torch.full((2, 2), 2 * math.exp(0.5), dtype=torch.float64))


def test_time_equal_to_t0_returns_y0():
    y0 = torch.randn(3, dtype=torch.float64)
    sol = odeflow.solve(lambda t, y: -y, y0, torch.tensor([0.3], dtype=torch.float64))
    assert sol.ys.shape == (1, 3) and torch.equal(sol.ys[0], y0)
    assert sol.stats.nfe == 0


def test_backwards_in_time():
    y1 = torch.tensor([math.exp(-2.0)], dtype=torch.float64)
    sol = odeflow.solve(
        lambda t, y: -y, y1, torch.tensor([2.0, 1.0, 0.0], dtype=torch.float64), step=odeflow.Adaptive(1e-10, 1e-12)
    )
    assert torch.allclose(sol.ys[:, 0], torch.exp(-torch.tensor([2.0, 1.0, 0.0], dtype=torch.float64)))


@pytest.mark.parametrize(
    "t,match",
    [
        ([0.0, 1.0, 0.5], "not sorted"),
        ([0.0, 1.0, 1.0], "duplicated"),
        ([[0.0, 1.0]], "1-D"),
        ([], "non-empty"),
        ([0.0, float("nan")], "NaN"),
    ],
)
def test_bad_times(t, match):
    with pytest.raises(ValueError, match=match):
        odeflow.solve(lambda t, y: -y, torch.ones(2), torch.tensor(t))


def test_unknown_method_lists_valid_ones():
    with pytest.raises(ValueError, match="valid methods are .*dopri5.*rk4"):
        odeflow.solve(lambda t, y: -y, torch.ones(2), T, method="rk45")


def test_adaptive_step_with_method_without_estimator():
    with pytest.raises(ValueError, match="no embedded error estimate"):
        odeflow.solve(lambda t, y: -y, torch.ones(2), T, method="rk4", step=odeflow.Adaptive())


def test_mismatched_shapes():
    with pytest.raises(ValueError, match=r"returned shape\(s\) \[\(3,\)\] but the state has shape\(s\) \[\(2,\)\]"):
        odeflow.solve(lambda t, y: torch.ones(3), torch.ones(2), T)


def test_tuple_state_with_wrong_number_of_derivatives():
    with pytest.raises(ValueError, match="tuple of 2 tensors"):
        odeflow.solve(lambda t, s: (s[0],), (torch.ones(2), torch.ones(1)), T)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_y0(bad):
    with pytest.raises(ValueError, match="NaN or inf"):
        odeflow.solve(lambda t, y: -y, torch.tensor([1.0, bad]), T)


def test_integer_state_is_rejected():
    with pytest.raises(TypeError, match="floating point"):
        odeflow.solve(lambda t, y: -y, torch.ones(2, dtype=torch.int64), T)


@pytest.mark.parametrize("kwargs", [dict(rtol=0.0), dict(rtol=-1e-3), dict(atol=-1.0), dict(rtol=float("nan"))])
def test_bad_tolerances(kwargs):
    with pytest.raises(ValueError, match="rtol|atol"):
        odeflow.Adaptive(**kwargs)


def test_bad_fixed_step():
    with pytest.raises(ValueError, match="positive"):
        odeflow.FixedStep(0.0)


@pytest.mark.parametrize(
    "method,step", [("dopri5", odeflow.Adaptive(1e-6, 1e-8)), ("tsit5", odeflow.Adaptive(1e-6, 1e-8))]
)
def test_blow_up_raises_solver_error_with_time_reached(method, step):
    """y' = y^2, y(0) = 1 blows up at t = 1."""
    with pytest.raises(SolverError) as info:
        odeflow.solve(
            lambda t, y: y**2,
            torch.ones(1, dtype=torch.float64),
            torch.tensor([0.0, 2.0], dtype=torch.float64),
            method=method,
            step=step,
        )
    assert 0.9 < info.value.t <= 1.0 + 1e-6
    assert "Hint" in str(info.value)


def test_blow_up_with_fixed_step_is_caught():
    with pytest.raises(SolverError, match="non-finite") as info:
        odeflow.solve(
            lambda t, y: y**2,
            torch.ones(1, dtype=torch.float64),
            torch.linspace(0, 2, 9, dtype=torch.float64),
            method="rk4",
            step=odeflow.FixedStep(0.05),
        )
    assert 1.0 <= info.value.t <= 2.0


def test_max_steps_raises():
    with pytest.raises(SolverError, match="max_steps=5"):
        odeflow.solve(
            lambda t, y: -y,
            torch.ones(1, dtype=torch.float64),
            torch.tensor([0.0, 10.0]),
            step=odeflow.Adaptive(rtol=1e-10, atol=1e-12, max_steps=5),
        )


def test_fixed_grid_lands_on_every_output_time():
    """h = 1.5/29 on 30 points is one step per interval (the seed's caution)."""
    t = torch.linspace(0, 1.5, 30, dtype=torch.float64)
    sol = odeflow.solve(
        lambda t, y: -y, torch.ones(1, dtype=torch.float64), t, method="rk4", step=odeflow.FixedStep(1.5 / 29)
    )
    assert sol.stats.steps == 29
    t32 = torch.linspace(0, 1.5, 30)  # float32 spacing is off by ~1e-6 relative
    assert (
        odeflow.solve(lambda t, y: -y, torch.ones(1), t32, method="rk4", step=odeflow.FixedStep(1.5 / 29)).stats.steps
        == 29
    )
    grid = odeflow.FixedStep(0.3).substeps([0.0, 1.0, 1.05])
    assert grid == [4, 1]


@pytest.mark.parametrize("T", [0.3, 0.5, 0.9])
def test_fixed_step_count_is_independent_of_the_interval(T):
    sol = odeflow.solve(
        lambda t, y: -y,
        torch.ones(3, dtype=torch.float64),
        torch.tensor([0.0, T]),
        method="rk4",
        step=odeflow.FixedStep(steps=4),
    )
    assert sol.stats.steps == 4 and sol.stats.nfe == 16
    assert torch.allclose(sol.ys[-1], torch.exp(torch.tensor(-T, dtype=torch.float64)).expand(3), rtol=1e-4)


@pytest.mark.parametrize(
    "kwargs, match", [(dict(steps=0), "steps must be an integer"), (dict(h=0.1, steps=2), "h or steps, not both")]
)
def test_bad_fixed_step_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        odeflow.FixedStep(**kwargs)
