"""Events in the core solver: roots on the dense output, direction, terminal, gradients."""

import math

import numpy as np
import pytest
import torch

import odeflow
from odeflow import Adaptive, Event, FixedStep, solve

D = torch.float64


def ball(g):
    return lambda t, y: torch.stack([y[1], -g * torch.ones_like(y[0])])


@pytest.mark.parametrize(
    "method,step",
    [
        ("dopri5", odeflow.Adaptive(1e-9, 1e-11)),
        ("tsit5", odeflow.Adaptive(1e-9, 1e-11)),
        ("dopri8", odeflow.Adaptive(1e-9, 1e-11)),
        ("rk4", odeflow.FixedStep(0.01)),
    ],
)
@pytest.mark.parametrize("gradient", ["disc-opt", "opt-disc"])
def test_falling_ball_event_time_and_its_gradient(method, step, gradient):
    """h(0) = 10, v(0) = v0 = 0: t_e = sqrt(2 h0 / g); dt_e/dh0 = 1/(g t_e), dt_e/dv0 = t_e/(g t_e - v0),
    dt_e/dg = -t_e / (2 g)."""
    g = torch.tensor(9.81, dtype=D, requires_grad=True)
    y0 = torch.tensor([10.0, 0.0], dtype=D, requires_grad=True)
    grad = odeflow.DiscretizeOptimize() if gradient == "disc-opt" else odeflow.OptimizeDiscretize(params=[g])
    t = torch.tensor([0.0, 0.5, 5.0], dtype=D)
    sol = odeflow.solve(
        ball(g), y0, t, method=method, step=step, gradient=grad, events=Event(lambda t, y: y[0], direction=-1)
    )
    te = math.sqrt(20 / 9.81)
    assert sol.status == "event" and len(sol.ts) == 3 and abs(float(sol.event_t) - te) < 1e-9
    assert abs(float(sol.ys[-1, 0])) < 1e-8
    d_y0, d_g = torch.autograd.grad(sol.event_t, (y0, g))
    assert torch.allclose(d_y0, torch.tensor([1 / (9.81 * te), 1 / 9.81], dtype=D), atol=1e-7)
    assert abs(float(d_g) + te / (2 * 9.81)) < 1e-7


def test_direction_filters_roots_and_non_terminal_events_are_recorded():
    f = lambda t, y: torch.cos(t) * torch.ones_like(y)  # noqa: E731  y = sin t
    t = torch.tensor([0.0, 10.0], dtype=D)
    rising = Event(lambda t, y: y[0] - 0.5, direction=1, terminal=False)
    falling = Event(lambda t, y: y[0] - 0.5, direction=-1, terminal=False)
    sol = odeflow.solve(f, torch.zeros(1, dtype=D), t, step=odeflow.Adaptive(1e-10, 1e-12), events=[rising, falling])
    up = [r.t for r in sol.events if r.index == 0]
    down = [r.t for r in sol.events if r.index == 1]
    assert sol.status == "success" and len(sol.ts) == 2
    assert up == pytest.approx([math.pi / 6, math.pi / 6 + 2 * math.pi], abs=1e-8)
    assert down == pytest.approx([5 * math.pi / 6, 5 * math.pi / 6 + 2 * math.pi], abs=1e-8)


def test_terminal_event_truncates_outputs_backwards_in_time():
    f = lambda t, y: -y  # noqa: E731
    t = torch.tensor([0.0, -0.5, -1.0, -2.0], dtype=D)
    sol = odeflow.solve(f, torch.ones(1, dtype=D), t, events=lambda t, y: y[0] - 2.0)
    assert sol.ts.tolist()[:2] == [0.0, -0.5] and len(sol.ts) == 3
    assert abs(float(sol.event_t) + math.log(2.0)) < 1e-8


def test_event_validation():
    with pytest.raises(ValueError, match="direction"):
        Event(lambda t, y: y, direction=2)
    with pytest.raises(ValueError, match="scipy_solver"):
        odeflow.solve(
            lambda t, y: -y,
            torch.ones(1, dtype=D),
            torch.tensor([0.0, 1.0], dtype=D),
            method="scipy_solver",
            events=lambda t, y: y[0] - 0.5,
        )


@pytest.mark.parametrize("method", ["dopri5", "tsit5", "bosh3", "radauIIA5", "rk4"])
def test_a_root_past_the_last_time_is_not_an_event(method):
    """y' = a (steps grow large: no error): the root of y - c lies past t[-1] (no event, the
    solve ends at t[-1]) or before it (an event there). A step that overshoots t[-1] (dense
    output) used to report the root beyond it."""
    g = np.random.default_rng(len(method))
    step = FixedStep(0.1) if method == "rk4" else Adaptive(rtol=1e-8, atol=1e-10)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    for _ in range(3):
        a, shift = g.uniform(0.2, 2.0), g.uniform(0.02, 0.3)
        for t_root, hit in ((1.0 + shift, False), (1.0 - shift, True)):
            c = a * t_root
            sol = solve(lambda t, y: a * torch.ones_like(y), torch.zeros(1, dtype=torch.float64), t, method=method, step=step,
                        events=Event(lambda t, y: y[0] - c))  # fmt: skip
            assert (sol.status == "event") == hit, (method, a, t_root)
            if hit:
                assert abs(float(sol.event_t) - t_root) < 1e-5
            else:
                assert sol.ts[-1] == 1.0 and sol.event_t is None
