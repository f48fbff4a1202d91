"""Step callbacks in the core loop (torchdiffeq's callback_* attributes on the vector field)."""

import pytest
import torch
from torch import nn

import odeflow

D = torch.float64
T = torch.tensor([0.0, 1.0], dtype=D)


class Logged(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(-1.0, dtype=D))
        self.log = []

    def forward(self, t, y):
        return self.w * y

    def callback_step(self, t0, y0, dt):
        self.log.append(("step", float(t0), float(dt)))

    def callback_accept_step(self, t0, y0, dt):
        self.log.append(("accept", float(t0), float(dt)))

    def callback_reject_step(self, t0, y0, dt):
        self.log.append(("reject", float(t0), float(dt)))

    def callback_step_adjoint(self, t0, y0, dt):
        self.log.append(("adjoint", float(t0), float(dt)))


def count(log, kind):
    return sum(1 for e in log if e[0] == kind)


@pytest.mark.parametrize(
    "method,step",
    [
        ("dopri5", odeflow.Adaptive(1e-8, 1e-10, first_step=0.9)),
        ("rk4", odeflow.FixedStep(0.1)),
        ("radauIIA5", odeflow.Adaptive(1e-6, 1e-8)),
        ("implicit_adams", odeflow.FixedStep(0.1)),
    ],
)
def test_callbacks_are_called_once_per_step(method, step):
    f = Logged()
    sol = odeflow.solve(f, torch.ones(2, dtype=D), T, method=method, step=step)
    assert count(f.log, "step") == sol.stats.steps
    assert count(f.log, "accept") == sol.stats.accepted
    assert count(f.log, "reject") == sol.stats.rejected
    accepted = [e for e in f.log if e[0] == "accept"]
    assert accepted[0][1] == 0.0 and accepted[-1][1] + accepted[-1][2] >= 1.0 - 1e-12
    for a, b in zip(accepted, accepted[1:]):  # each accepted step starts where the last one ended
        assert abs(a[1] + a[2] - b[1]) < 1e-12


def test_adjoint_callbacks_are_called_in_the_backward_solve_with_negative_dt():
    f = Logged()
    sol = odeflow.solve(f, torch.ones(2, dtype=D, requires_grad=True), T, gradient=odeflow.OptimizeDiscretize())
    sol.ys[-1].sum().backward()
    back = [e for e in f.log if e[0] == "adjoint"]
    assert len(back) == sol.stats.steps_backward and all(e[2] < 0 for e in back)


def test_dropin_passes_positive_dt_and_a_tuple_state():
    seen = []

    class F(nn.Module):
        def forward(self, t, y):
            return (-y[0], y[0])

        def callback_step(self, t0, y0, dt):
            seen.append((float(dt), isinstance(y0, tuple)))

    odeflow.odeint(F(), (torch.ones(1, dtype=D), torch.zeros(1, dtype=D)), T.flip(0))
    assert seen and all(dt > 0 and is_tuple for dt, is_tuple in seen)


def test_non_callable_callback_is_a_type_error():
    class F(nn.Module):
        callback_step = 3

        def forward(self, t, y):
            return -y

    with pytest.raises(TypeError, match="callback_step"):
        odeflow.solve(F(), torch.ones(1, dtype=D), T)
