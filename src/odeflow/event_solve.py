"""Solving until an event (`solve(..., events=...)`, `odeint(..., event_fn=...)`, `odeint_event`).

Two passes: the first, without a graph, integrates and locates the roots on the dense output
(`solvers.events`); the second solves to [output times before the terminal event, t_e] with
the requested gradient mode, and `EventTime` adds the gradient through t_e. The second pass
repeats the first pass's steps (the cost of an event solve is about two solves).
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import torch
from torch import Tensor

from .gradients import DiscretizeOptimize
from .solvers.events import (Event, EventTime, EventWatcher, as_events, fixed_steps_until_event, hermite_advance,
                             rk_advance)
from .solvers.grid import GridTimes
from .solvers.loop import integrate_adaptive, real_dtype
from .solvers.problem import Problem, make_problem
from .solvers.solution import Solution, SolverStats
from .solvers.state import packed_func
from .solvers.stepping import Adaptive
from .solvers.tableau import ButcherTableau


def locate(problem: Problem, events: Sequence[Event], t_end: float) -> EventWatcher:
    """First pass: integrate from t0 toward t_end (may be +-inf) and record the roots on the
    dense output of the method: the continuous extension of explicit RK methods (cubic
    Hermite where they have none), the Adams interpolant, cubic Hermite for implicit RK."""
    method = problem.method
    if problem.compile:
        raise ValueError("events do not combine with compile=True")
    if not isinstance(method, ButcherTableau) and not hasattr(method, "stepper"):
        raise ValueError(f"events are not available with {method.name!r} (it returns no dense output); use "
                         "dopri5, tsit5, an Adams or an implicit method")
    y0 = problem.y0.detach()
    t0 = problem.t_values[0]
    watcher = EventWatcher(events, problem.packer, t0, y0, real_dtype(y0.dtype))
    scratch = SolverStats()
    step = problem.step
    with torch.no_grad():
        if isinstance(step, Adaptive):
            if isinstance(method, ButcherTableau):
                integrate_adaptive(method, problem.func, y0, [t0, t_end], step, problem.norm, scratch,
                                   events=watcher)
            else:
                method.integrate(problem.func, y0, [t0, t_end], step, problem.norm, scratch, events=watcher)
        else:
            h = step.h
            if h is None:
                if not math.isfinite(t_end):
                    raise ValueError("fixed-step event handling needs a step size (options=dict(step_size=h) "
                                     "or FixedStep(h))")
                h = abs(t_end - t0) / (step.steps or 1)
            times = GridTimes(y0.dtype, y0.device, step.perturb)
            if isinstance(method, ButcherTableau):
                advance = rk_advance(method, problem.func, y0, times)
            elif hasattr(method, "event_stepper"):  # a method with its own interpolant (Adams)
                advance = method.event_stepper(problem.func, y0, step)
            else:
                advance = hermite_advance(method.stepper(problem.func, y0, step), problem.func, times)
            fixed_steps_until_event(advance, y0, t0, h, t_end, watcher, scratch, getattr(step, "max_steps", 20000))
    return watcher


def solve_with_events(func: Callable, y0, t: Tensor, method, step, gradient, events, check_finite: bool,
                      reroute: bool = True, t_end: Optional[float] = None) -> Solution:
    """See `odeflow.solve` (events=...). ``t_end`` overrides t[-1] as the end of the search
    (odeint's event mode searches without an end: +-inf)."""
    from .solve import solve
    evs = as_events(events)
    probe = make_problem(func, y0, t, method, step)
    values = probe.t_values
    end = values[-1] if t_end is None else t_end
    if len(values) == 1 and t_end is None:
        raise ValueError("events need at least two times in t (the search runs from t[0] to t[-1])")
    watcher = locate(probe, evs, end)
    nfe_first = probe.stats.nfe
    rec = watcher.terminal
    if rec is None:
        if t_end is not None and not math.isfinite(t_end):
            raise RuntimeError("no terminal event was found")  # unreachable: locate raises first
        sol = solve(func, y0, t, method=method, step=step, gradient=gradient, check_finite=check_finite)
        sol.events, sol.stats.nfe = watcher.found, sol.stats.nfe + nfe_first
        return sol
    direction = 1.0 if end >= values[0] else -1.0
    keep = 1 if t_end is not None else max(1, sum(1 for v in values if (rec.t - v) * direction > 0))
    t_tensor = t if isinstance(t, Tensor) else torch.as_tensor(t, dtype=torch.float64)
    t_e = torch.tensor(rec.t, dtype=t_tensor.dtype if t_tensor.is_floating_point() else torch.float64,
                       device=t_tensor.device)
    t_new = torch.cat([t_tensor[:keep], t_e.reshape(1)])
    problem = make_problem(func, y0, t_new, method, step)
    gradient = DiscretizeOptimize() if gradient is None else gradient
    ys = gradient.run(problem)
    ys = list(ys.unbind(0)) if isinstance(ys, Tensor) else ys
    t_out = t_e
    if reroute:
        flat_f = packed_func(func, problem.packer)
        ev, k = evs[rec.index], rec.component

        def g(tt: Tensor, y: Tensor) -> Tensor:
            out = torch.as_tensor(ev.fn(tt.to(real_dtype(y.dtype)), problem.packer.unpack(y)))
            return out.reshape(-1)[k].real if out.is_complex() else out.reshape(-1)[k]

        t_out, ys[-1] = EventTime.apply(t_e.to(real_dtype(ys[-1].dtype)), ys[-1], flat_f, g)
        t_out = t_out.to(t_e.dtype)
    stacked = torch.stack(ys)
    if check_finite and not bool(torch.isfinite(stacked.detach()).all()):
        from .solvers.errors import SolverError
        raise SolverError("the solution became non-finite (NaN/inf)", rec.t, float("nan"), "check the vector field")
    problem.stats.nfe += nfe_first
    return Solution(ts=torch.cat([t_tensor[:keep], t_out.reshape(1)]), ys=problem.packer.unpack_series(stacked),
                    stats=problem.stats, status="event", events=watcher.found, event_t=t_out)
