"""The rooms behind `solve`'s door: problem -> (event search) -> gradient -> loop, each once.

`SolveCall` is one validated call of `solve`; `run` builds the problem (`solvers.problem`),
lets the events, when there are any, cut it at the terminal event (`solvers.event_mode`, the
loop in event mode), hands it to the gradient mode (`gradients`), which runs the loop, and
checks what comes back. The compile wrapper (`compiling`) calls `run` with compiled=True.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

import torch
from torch import Tensor

from .gradients import DiscretizeOptimize, OptimizeDiscretize
from .solvers.errors import SolverError
from .solvers.event_mode import EventStop, check_event_finite, through_event_time, until_event
from .solvers.problem import capturing, make_problem
from .solvers.solution import Solution
from .solvers.state import State

Gradient = Union[DiscretizeOptimize, OptimizeDiscretize]


@dataclass(frozen=True)
class SolveCall:
    """The arguments of one `solve` (see there), the gradient mode resolved. ``event_end``: the
    end of the event search when it is not t[-1] (odeint's event mode: +-inf); ``reroute``:
    route the gradient through the event time (`odeint_event`) or not (`odeint(event_fn=)`)."""

    func: Callable
    y0: State
    t: Any
    method: Any
    step: Any
    gradient: Gradient
    check_finite: bool = True
    events: Any = None
    event_end: Optional[float] = None
    reroute: bool = True


def run(call: SolveCall, compiled: bool = False) -> Solution:
    """Solve ``call``: eagerly, or through the compiled loop when ``compiled``."""
    check_finite = call.check_finite and not capturing(_first_tensor(call.y0))
    stop = None
    if call.events is None:
        problem = make_problem(
            call.func, call.y0, call.t, call.method, call.step, compile=compiled, check_finite=check_finite
        )
    else:
        stop = until_event(
            call.func, call.y0, call.t, call.method, call.step, call.events, check_finite, call.event_end, compiled
        )
        problem = stop.problem
    if compiled and isinstance(call.gradient, DiscretizeOptimize) and call.gradient.checkpointed:
        raise ValueError(
            "compile=True does not combine with checkpointed DiscretizeOptimize (the compiled "
            "loop keeps what its backward needs); drop checkpoints or use compile=False"
        )
    out = call.gradient.run(problem)
    if stop is not None and stop.t_e is not None:
        return _at_event(call, stop, out, compiled)
    ys = out if isinstance(out, Tensor) else torch.stack(out)  # the adjoint returns its node's output as is
    if check_finite and not bool(torch.isfinite(ys.detach()).all()):
        finite_rows = torch.isfinite(ys.detach()).reshape(len(ys), -1).all(dim=1).tolist()
        raise SolverError(
            "the solution became non-finite (NaN/inf)",
            problem.t_values[finite_rows.index(False)],
            float("nan"),
            "the ODE blows up or the fixed step is too large; use a smaller step or an adaptive method",
        )
    sol = Solution(ts=problem.t, ys=problem.packer.unpack_series(ys), stats=problem.stats, compiled=compiled)
    if stop is not None:  # events, none terminal
        sol.events, sol.stats.nfe = stop.watcher.found, sol.stats.nfe + stop.nfe_search
    return sol


def _at_event(call: SolveCall, stop: EventStop, out, compiled: bool) -> Solution:
    """The solution up to the terminal event, with the gradient through its time."""
    ys = list(out.unbind(0)) if isinstance(out, Tensor) else list(out)
    t_out, ys = through_event_time(stop, ys, call.reroute)
    stacked = torch.stack(ys)
    if call.check_finite:
        check_event_finite(stacked, stop)
    problem = stop.problem
    problem.stats.nfe += stop.nfe_search
    assert stop.t_kept is not None
    return Solution(
        ts=torch.cat([stop.t_kept, t_out.reshape(1)]),
        ys=problem.packer.unpack_series(stacked),
        stats=problem.stats,
        status="event",
        events=stop.watcher.found,
        event_t=t_out,
        compiled=compiled,
    )


def _first_tensor(y0: State) -> Tensor:
    first = y0[0] if isinstance(y0, (tuple, list)) and y0 else y0
    return first if isinstance(first, Tensor) else torch.empty(0)
