"""Step callbacks through the drop-in, as torchdiffeq calls them: a warning names the ones a
solver never calls (accept/reject on fixed grids, all of them with scipy_solver), and the
*_adjoint callbacks are called once per backward step for every method."""

import warnings

import pytest
import torch

import odeflow
from odeflow.solvers import Adaptive

D = torch.float64


class Counting(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.k = torch.nn.Parameter(torch.tensor(0.8, dtype=D))
        self.calls = {}

    def forward(self, t, y):
        return -self.k * y

    def _count(self, name, dt):
        assert float(dt) > 0  # torchdiffeq's callbacks see dt > 0
        self.calls[name] = self.calls.get(name, 0) + 1

    def callback_step(self, t0, y0, dt):
        self._count("step", dt)

    def callback_accept_step(self, t0, y0, dt):
        self._count("accept", dt)

    def callback_reject_step(self, t0, y0, dt):
        self._count("reject", dt)

    def callback_step_adjoint(self, t0, y0, dt):
        assert isinstance(y0, tuple) and len(y0) == 4  # (vjp_t, y, adj_y, adj_k)
        self._count("step_adjoint", dt)

    def callback_accept_step_adjoint(self, t0, y0, dt):
        self._count("accept_adjoint", dt)

    def callback_reject_step_adjoint(self, t0, y0, dt):
        self._count("reject_adjoint", dt)


FIXED = ["euler", "rk4", "implicit_adams", "explicit_adams", "implicit_euler", "radauIIA5", "gl4", "trbdf2"]


@pytest.mark.parametrize("method", FIXED)
@pytest.mark.parametrize("reverse", [False, True])
def test_fixed_grid_calls_step_callbacks_once_per_step_both_ways_and_warns_for_the_others(method, reverse):
    f = Counting()
    t = torch.tensor([1.0, 0.0] if reverse else [0.0, 1.0], dtype=D)
    with pytest.warns(UserWarning, match="does not support callbacks") as record:
        ys = odeflow.odeint_adjoint(f, torch.ones(2, dtype=D), t, method=method, options=dict(step_size=0.1))
        ys.sum().backward()
    named = " ".join(str(w.message) for w in record)
    assert "callback_accept_step" in named and "callback_reject_step_adjoint" in named
    assert f.calls == {"step": 10, "step_adjoint": 10}


@pytest.mark.parametrize("method", ["implicit_euler", "implicit_midpoint", "trapezoid", "radauIIA3", "sdirk2", "gl6"])
def test_implicit_methods_are_fixed_grid_solvers_in_the_dropin(method):
    """As in torchdiffeq's master: the implicit methods step on a fixed grid (one step per output
    interval, or step_size) and warn that callback_accept_step / callback_reject_step are never
    called, as the other fixed-grid methods do."""
    for name in ("callback_accept_step", "callback_reject_step"):
        f = Counting()
        setattr(f, name, lambda t0, y0, dt: None)
        with pytest.warns(UserWarning, match="does not support callbacks"):
            odeflow.odeint(f, torch.ones(2, dtype=D), torch.tensor([0.0, 1.0], dtype=D), method=method)
        assert f.calls == {"step": 1}
    f = Counting()
    with pytest.warns(UserWarning, match="does not support callbacks"):
        odeflow.odeint(
            f, torch.ones(2, dtype=D), torch.tensor([0.0, 1.0], dtype=D), method=method, options=dict(step_size=0.25)
        )
    assert f.calls["step"] == 4


@pytest.mark.parametrize("method", ["radauIIA5", "sdirk2"])
def test_solve_keeps_adaptive_implicit_steps_with_every_callback(method):
    """odeflow's own API still takes adaptive implicit steps, calling accept/reject callbacks."""
    f = Counting()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sol = odeflow.solve(
            f, torch.ones(2, dtype=D), torch.tensor([0.0, 1.0], dtype=D), method=method, step=Adaptive(rtol=1e-6)
        )
    assert sol.stats.accepted > 1 and f.calls["step"] == f.calls["accept"] + f.calls.get("reject", 0)


@pytest.mark.parametrize("method", ["dopri5", "bosh3"])
def test_adaptive_adjoint_callbacks_once_per_backward_step(method):
    f = Counting()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every callback is supported: no warning
        ys = odeflow.odeint_adjoint(
            f, torch.ones(2, dtype=D), torch.tensor([0.0, 1.0], dtype=D), method=method, rtol=1e-6, atol=1e-8
        )
    ys.sum().backward()
    assert f.calls["step"] == f.calls["accept"] + f.calls.get("reject", 0) > 0
    assert f.calls["step_adjoint"] == f.calls["accept_adjoint"] + f.calls.get("reject_adjoint", 0) > 0


def test_scipy_solver_warns_that_no_callback_is_called():
    f = Counting()
    with pytest.warns(UserWarning, match="scipy_solver.*does not support callbacks"):
        odeflow.odeint(f, torch.ones(2, dtype=D), torch.tensor([0.0, 1.0], dtype=D), method="scipy_solver")
    assert f.calls == {}


def test_warnings_match_torchdiffeq_callback_support():
    """The callbacks named in the warning are those torchdiffeq also reports as unsupported."""
    torchdiffeq = pytest.importorskip("torchdiffeq")
    names = []
    for lib in (odeflow, torchdiffeq):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            lib.odeint(
                Counting(),
                torch.ones(2, dtype=D),
                torch.tensor([0.0, 1.0], dtype=D),
                method="rk4",
                options=dict(step_size=0.25),
            )
        found = {
            n
            for w in record
            for n in ("callback_accept_step", "callback_reject_step", "callback_step")
            if f"'{n}'" in str(w.message)
        }
        names.append(found)
    assert names[0] == names[1] == {"callback_accept_step", "callback_reject_step"}
