"""Events as a mode of the solve (`solve(..., events=...)`, `odeint(..., event_fn=...)`, `odeint_event`).

The loop itself watches for roots: `locate` runs the one integration loop, without a graph,
with an `EventWatcher` checking the dense output after every accepted step (the continuous
extension of explicit RK methods, cubic Hermite where they have none, the Adams interpolant,
cubic Hermite for implicit RK). `until_event` turns the user's problem into the problem the
gradient then solves: [output times before the terminal event, t_e], or the whole problem
when no terminal event occurs. `EventTime` (in `events`) adds the gradient through t_e.
The cost of an event solve is about two solves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .adams import Adams
from .compiled import CompiledAttempt, compile_key
from .compiled_newton import with_compiled_newton
from .errors import SolverError
from .events import Event, EventTime, EventWatcher, as_events, fixed_steps_until_event
from .implicit import ImplicitRK
from .loop import integrate_adaptive
from .methods import get_method
from .problem import Problem, make_problem
from .solution import SolverStats
from .solver import ExplicitRK, Solver, as_solver
from .state import packed_func
from .stepping import Adaptive, FixedStep
from .tableau import ButcherTableau
from .times import StepTimes, real_dtype


def locate(problem: Problem, events: Sequence[Event], t_end: float) -> EventWatcher:
    """Integrate from t0 toward t_end (may be +-inf) without a graph, recording the roots of the
    events on the method's dense output; a terminal root ends the integration."""
    method = problem.method
    if not isinstance(method, ButcherTableau) and not hasattr(method, "step"):
        raise ValueError(
            f"events are not available with {method.name!r} (it returns no dense output); use "
            "dopri5, tsit5, an Adams or an implicit method"
        )
    y0 = problem.y0.detach()
    t0 = problem.t_values[0]
    watcher = EventWatcher(events, problem.packer, t0, y0, real_dtype(y0.dtype))
    scratch = SolverStats()
    step = problem.step
    with torch.no_grad():
        if isinstance(step, Adaptive):
            assert problem.norm is not None  # adaptive problems have one
            solver: Solver = as_solver(method)  # type: ignore[arg-type]  # adaptive: a tableau or a Solver
            if problem.compile and isinstance(method, ButcherTableau):  # each attempted step one compiled call
                key = compile_key("forward", method, problem.field, y0)
                attempt = CompiledAttempt(method, problem.raw_func(), problem.norm, problem.stats.count_evals, key)
                solver = ExplicitRK(method, attempt)
            elif problem.compile:  # implicit: each step's Newton iteration one compiled call
                solver = with_compiled_newton(problem, y0)
            integrate_adaptive(solver, problem.func, y0, [t0, t_end], step, problem.norm, scratch, events=watcher)
            return watcher
        h = step.h
        if h is None:
            if not math.isfinite(t_end):
                raise ValueError(
                    "fixed-step event handling needs a step size (options=dict(step_size=h) or FixedStep(h))"
                )
            h = abs(t_end - t0) / (step.steps or 1)
        times = StepTimes(y0.dtype, y0.device, step.perturb)
        fixed_steps_until_event(
            as_solver(method),
            problem.func,
            y0,
            t0,
            h,
            t_end,
            watcher,
            scratch,
            getattr(step, "max_steps", 20000),
            times,
        )
    return watcher


def compile_refusal(method: Any, step: Any) -> Optional[str]:
    """Why events cannot be solved with compile=True (None: they can). The search takes each
    attempted step (an implicit method: each step's Newton iteration) as one compiled call and
    the solve to the event compiles as any solve; both need an adaptive Runge-Kutta method (a
    fixed grid's length, and so its compiled program, would change with every event time)."""
    try:
        tab = get_method(method)
    except (ValueError, TypeError):
        return None  # the solve itself reports the bad method
    if not isinstance(tab, (ButcherTableau, ImplicitRK)):
        return f"events with method {tab.name!r}"
    if not isinstance(step, Adaptive) and not (step is None and tab.adaptive):
        return "events with fixed steps"
    return None


@dataclass
class EventStop:
    """What the event search found, and the problem the gradient mode solves next."""

    watcher: EventWatcher
    events: List[Event]
    problem: Problem  # to the terminal event, or the whole problem when there is none
    nfe_search: int  # evaluations spent by `locate`
    t_kept: Optional[Tensor] = None  # output times before the terminal event (None: no terminal event)
    t_e: Optional[Tensor] = None


def until_event(
    func: Callable,
    y0,
    t,
    method,
    step,
    events,
    check_finite: bool,
    t_end: Optional[float] = None,
    compile: bool = False,
) -> EventStop:
    """Search t[0] -> t[-1] (or -> ``t_end``, which may be +-inf) for the events, and build the
    problem to solve with gradients: to the terminal event if one occurred. ``compile``: the
    search's attempted steps and the solve after it run compiled (`compile_refusal`)."""
    evs = as_events(events)
    probe = make_problem(func, y0, t, method, step, compile=compile)
    values = probe.t_values
    end = values[-1] if t_end is None else t_end
    if len(values) == 1 and t_end is None:
        raise ValueError("events need at least two times in t (the search runs from t[0] to t[-1])")
    watcher = locate(probe, evs, end)
    rec = watcher.terminal
    if rec is None:
        whole = make_problem(func, y0, t, method, step, compile=compile, check_finite=check_finite)
        return EventStop(watcher, evs, whole, probe.stats.nfe)
    direction = 1.0 if end >= values[0] else -1.0
    keep = 1 if t_end is not None else max(1, sum(1 for v in values if (rec.t - v) * direction > 0))
    t_tensor = t if isinstance(t, Tensor) else torch.as_tensor(t, dtype=torch.float64)
    t_e = torch.tensor(
        rec.t, dtype=t_tensor.dtype if t_tensor.is_floating_point() else torch.float64, device=t_tensor.device
    )
    t_kept = t_tensor[:keep]
    if keep == 1 and isinstance(probe.method, Adams) and isinstance(step, FixedStep) and step.h is not None:
        # The search's own steps and polynomial; t0 held fixed there, so that the state at t_e is
        # the searched one to the bit (an unstable high-order Adams amplifies any rounding change).
        step, t_kept = _search_grid(step, values[0], rec.t, end), t_kept.detach()
    problem = make_problem(func, y0, torch.cat([t_kept, t_e.reshape(1)]), method, step, compile=compile)
    return EventStop(watcher, evs, problem, probe.stats.nfe, t_tensor[:keep], t_e)


def _search_grid(step: FixedStep, t0: float, t_e: float, end: float) -> FixedStep:
    """The search's grid t0 + k h through the step containing t_e, interpolated there with the
    Adams polynomial the event was located on: the state at t_e is the one whose event function
    is zero (a shortened last step would break the equal-step history Adams needs)."""
    assert step.h is not None
    direction = 1.0 if t_e >= t0 else -1.0
    pts = [t0]
    while (pts[-1] - t_e) * direction < 0:
        nxt = t0 + len(pts) * direction * step.h
        pts.append(nxt if (nxt - end) * direction < 0 else end)
    if len(pts) < 2:
        return step
    return FixedStep(grid=tuple(pts), interp="own", perturb=step.perturb)


def through_event_time(stop: EventStop, ys: List[Tensor], reroute: bool) -> Tuple[Tensor, List[Tensor]]:
    """t_e and the states, with the gradient of the terminal event time (implicit function
    theorem: dt_e = -(dg/dy . dy) / (dg/dt + dg/dy . f), `EventTime`) when ``reroute``."""
    assert stop.t_e is not None and stop.watcher.terminal is not None
    if not reroute:
        return stop.t_e, ys
    problem, rec = stop.problem, stop.watcher.terminal
    flat_f = packed_func(problem.field, problem.packer)
    ev, k = stop.events[rec.index], rec.component

    def g(tt: Tensor, y: Tensor) -> Tensor:
        out = torch.as_tensor(ev.fn(tt.to(real_dtype(y.dtype)), problem.packer.unpack(y)))
        return out.reshape(-1)[k].real if out.is_complex() else out.reshape(-1)[k]

    t_out, ys[-1] = EventTime.apply(stop.t_e.to(real_dtype(ys[-1].dtype)), ys[-1], flat_f, g)
    return t_out.to(stop.t_e.dtype), ys


def check_event_finite(stacked: Tensor, stop: EventStop) -> None:
    """The event solve's outputs must be finite."""
    if not bool(torch.isfinite(stacked.detach()).all()):
        t_fail = stop.watcher.terminal.t if stop.watcher.terminal is not None else float("nan")
        raise SolverError("the solution became non-finite (NaN/inf)", t_fail, float("nan"), "check the vector field")
