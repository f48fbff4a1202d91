"""The integration loops: a fixed grid (no host synchronisation) and adaptive steps (one
synchronisation per attempted step, to read the error norm).

Both work on a single tensor state (tuples are packed before they get here) and call
f(t, y) with t a 0-d tensor of the state's dtype. Time itself is kept in float64: Python
floats on the host, or float64 tensors when gradients with respect to time are wanted.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from .errors import SolverError
from .hooks import StepHooks
from .solution import SolverStats
from .solver import Interpolant, Solver, as_solver
from .state import ErrorNorm
from .stepping import Adaptive, initial_step
from .tableau import ButcherTableau
from .times import StepTimes, perturb_stage_times, real_dtype

Func = Callable[[Tensor, Tensor], Tensor]


class FixedGrid:
    """Step sizes and stage times of a fixed-step solve, prepared once before the loop.

    With ``t_tensor`` requiring grad, grid points are differentiable functions of the
    output times (t_i + (t_{i+1} - t_i) * j / n_i), so the discrete solution can be
    differentiated with respect to every output time; otherwise plain floats are used.
    """

    def __init__(
        self,
        tab: ButcherTableau,
        t: Sequence[float],
        substeps: Sequence[int],
        dtype: torch.dtype,
        device: torch.device,
        t_tensor: Optional[Tensor] = None,
        perturb: bool = False,
    ) -> None:
        dtype = real_dtype(dtype)
        self.substeps = list(substeps)
        self.perturb = perturb
        idx = torch.repeat_interleave(torch.arange(len(self.substeps)), torch.tensor(self.substeps))
        frac = torch.cat([torch.arange(n, dtype=torch.float64) / n for n in self.substeps])
        c = torch.tensor(tab.c, dtype=torch.float64)
        if t_tensor is not None and t_tensor.requires_grad:
            tt = t_tensor.to(torch.float64)
            tt_dev = tt.to(device)
            left = tt_dev[idx.to(device)]
            width = (tt_dev[1:] - tt_dev[:-1])[idx.to(device)]
            starts = left + width * frac.to(device)
            ends = torch.cat([starts[1:], tt_dev[-1:]])
            # Interior ends equal the next start; the last end of each interval is t_{i+1}.
            h = ends - starts
            stage_t = starts[:, None] + h[:, None] * c.to(device)[None, :]
            self.h_table = h.to(dtype)
            self.h: List = list(self.h_table.unbind())
        else:
            tt = torch.tensor(list(t), dtype=torch.float64)
            starts = tt[idx] + (tt[1:] - tt[:-1])[idx] * frac
            ends = torch.cat([starts[1:], tt[-1:]])
            h = ends - starts
            stage_t = starts[:, None] + h[:, None] * c[None, :]
            self.h = h.tolist()
            self.h_table = h.to(device)
        # each step's ends on the host (hooks, and the times of an interpolant's nodes)
        self.starts: List[float] = starts.detach().cpu().tolist()
        self.ends: List[float] = ends.detach().cpu().tolist()
        # [steps, stages] table of stage times (for the compiled scan) and the same as 0-d tensors.
        self.stage_table = stage_t.to(device=device, dtype=dtype)
        if perturb:
            self.stage_table = perturb_stage_times(self.stage_table, c.tolist(), 1.0 if t[-1] >= t[0] else -1.0)
        self.stage_times: List[Tensor] = list(self.stage_table.reshape(-1).unbind())
        self.stages = tab.stages
        # Step counts after which the state is at an output time.
        self.output_steps = set(itertools.accumulate(self.substeps))

    def __len__(self) -> int:
        return len(self.h)

    def times(self, step: int) -> List[Tensor]:
        s = self.stages
        return self.stage_times[step * s : (step + 1) * s]


@functools.lru_cache(maxsize=64)
def _cached_grid(
    tab: ButcherTableau,
    t: Tuple[float, ...],
    substeps: Tuple[int, ...],
    dtype: torch.dtype,
    device: torch.device,
    perturb: bool,
) -> FixedGrid:
    return FixedGrid(tab, t, substeps, dtype, device, None, perturb)


def fixed_grid(
    tab: ButcherTableau,
    t: Sequence[float],
    substeps: Sequence[int],
    dtype: torch.dtype,
    device: torch.device,
    t_tensor: Optional[Tensor] = None,
    perturb: bool = False,
) -> FixedGrid:
    """A FixedGrid, reused across solves when the times are plain numbers: repeated solves on the
    same grid (every training iteration) then copy no step sizes or stage times to the device,
    which also makes a fixed-step solve free of host-to-device copies (CUDA-graph capturable)."""
    if t_tensor is not None and t_tensor.requires_grad:
        return FixedGrid(tab, t, substeps, dtype, device, t_tensor, perturb)
    return _cached_grid(tab, tuple(t), tuple(substeps), dtype, torch.device(device), perturb)


class GridStepTimes(StepTimes):
    """The times of step ``index`` of a prepared grid (`FixedGrid`): its stage times are the
    grid's row (already perturbed, differentiable when the grid is), so the step builds no time
    tensor. Other nodes (an interpolant's end) are computed as `StepTimes` does."""

    def __init__(self, grid: FixedGrid, index: int, c: Tuple[float, ...], y: Tensor) -> None:
        super().__init__(y.dtype, y.device, grid.perturb)
        self.grid, self.index, self.c = grid, index, c

    def stages(self, t, h, c, before_jump=False, span=None) -> List[Tensor]:
        if tuple(c) == self.c:
            return self.grid.times(self.index)
        return super().stages(t, h, c, before_jump, span)


def integrate_fixed(
    method: Union[ButcherTableau, Solver],
    f: Func,
    y0: Tensor,
    grid: FixedGrid,
    stats: SolverStats,
    first: int = 0,
    last: Optional[int] = None,
    hooks: Optional[StepHooks] = None,
) -> Tuple[List[Tensor], Tensor]:
    """Steps ``first`` .. ``last``-1 of the grid from y0 through the method's `Solver.step`
    (no error estimate, no host synchronisation). Returns (states at the output times crossed,
    final state). Output times are grid points; a step's h is the grid's (a tensor when the
    grid is differentiable in the output times)."""
    solver = as_solver(method)
    c = tuple(method.c) if isinstance(method, ButcherTableau) else ()
    last = len(grid) if last is None else last
    outs: List[Tensor] = []
    y, carry = y0, None
    for i in range(first, last):
        h = grid.h[i]
        times = GridStepTimes(grid, i, c, y)
        t, t1 = grid.starts[i], grid.ends[i]
        if hooks is not None:
            hooks.step(t, y, t1 - t)
        res = solver.step(f, None, y, carry, t, h, t1, times)
        assert res.y1 is not None
        if hooks is not None:
            hooks.accept(t, y, t1 - t)
        y, carry = res.y1, res.carry()
        if i + 1 in grid.output_steps:
            outs.append(y)
    stats.steps += last - first
    stats.accepted += last - first
    return outs, y


class _Stops:
    """Times a step must land on (step_t, jump_t) beyond t0 in the direction of integration."""

    def __init__(self, ctrl: Adaptive, t0: float, direction: float) -> None:
        ahead = lambda v: (v - t0) * direction > 0  # noqa: E731
        self.jumps = set(v for v in ctrl.jump_t if ahead(v))
        self.times = sorted((v for v in set(ctrl.step_t) | self.jumps if ahead(v)), key=lambda v: v * direction)
        self.i = 0

    def next(self) -> Optional[float]:
        return self.times[self.i] if self.i < len(self.times) else None

    def passed(self, t: float, direction: float) -> None:
        while self.i < len(self.times) and (self.times[self.i] - t) * direction <= 0:
            self.i += 1


MAX_STEPS_HINT = "raise max_steps, loosen rtol/atol, or check whether the ODE is stiff"


def _first_step(solver: Solver, f, y0: Tensor, t0: float, h0, ctrl: Adaptive, norm, direction: float, times):
    """(f(t0, y0) or None, the first step): h0 or ctrl.first_step as given, else Hairer's
    initial-step rule (which needs f(t0, y0); without it the first attempt evaluates it)."""
    k1: Optional[Tensor] = None
    if h0 is None and ctrl.first_step is None:
        k1 = f(times.stages(t0, direction, [0.0])[0], y0)  # past t0 when f jumps there
        with torch.no_grad():
            h0 = initial_step(f, t0, y0.detach(), k1.detach(), solver.order, norm, direction, times.one)
    h_first = h0 if h0 is not None else ctrl.first_step
    assert h_first is not None
    return k1, h_first


def _landing(t: float, h: float, output: Optional[float], stop: Optional[float], direction: float) -> Optional[float]:
    """Where a step from t of size h must end instead of t + h: the next output time (to land
    on it exactly: asked for, or no interpolant of matching order), or a step_t/jump_t stop,
    whichever comes first; None when the step crosses neither."""
    land = None
    if output is not None and (t + h - output) * direction > 0:
        land, h = output, output - t
    if stop is not None and (t + h - stop) * direction > 0 and (land is None or (land - stop) * direction > 0):
        land = stop
    return land


class StepOutputs:
    """The outputs that fall inside one accepted step [t, t1]: the end state where an output time
    is t1, else the step's interpolant (float points of a dense output all at once)."""

    def __init__(self, dense: Interpolant, y1: Tensor) -> None:
        self.dense, self.y1 = dense, y1
        self._outs: List[Optional[Tensor]] = []
        self._thetas: List[Tuple[int, float]] = []

    def output(self, at_end: bool, theta: Union[float, Tensor], differentiable: bool) -> None:
        if at_end and not differentiable:
            self._outs.append(self.y1)
        elif self.dense.batched and not differentiable:
            self._thetas.append((len(self._outs), float(theta)))  # filled in all at once
            self._outs.append(None)
        else:
            self._outs.append(self.dense.at(theta))

    def outputs(self) -> List[Tensor]:
        if self._thetas:
            for (i, _), value in zip(self._thetas, self.dense.many([th for _, th in self._thetas])):
                self._outs[i] = value
        return [o for o in self._outs if o is not None]


def integrate_adaptive(
    method: Union[ButcherTableau, Solver],
    f: Func,
    y0: Tensor,
    t_out: Sequence[float],
    ctrl: Adaptive,
    norm: ErrorNorm,
    stats: SolverStats,
    h0: Optional[float] = None,
    t_tensor: Optional[Tensor] = None,
    land_on_outputs: bool = False,
    jump: Optional[Callable[[int, Tensor], Tensor]] = None,
    hooks: Optional[StepHooks] = None,
    events=None,
) -> Tuple[List[Tensor], float]:
    """The one adaptive loop, for every method that is a `solver.Solver` (explicit RK, eager
    or with compiled attempts, and implicit RK), through the output times t_out (monotone,
    either direction). Returns the states at t_out[1:] and the next proposed step (the adjoint
    continues with it). Outputs come from the step's interpolant, or steps land on them where
    the method has none of matching order. ``t_tensor`` requiring grad: stage times and
    interpolation points are differentiable in the output times (step sizes fixed).
    ``land_on_outputs``: steps end on the output times, where ``jump(i, y)`` may replace the
    state (the adjoint's dL/dy(t_i); outputs hold the states before the jump). ``hooks``: step
    callbacks. ``events`` (`events.EventWatcher`): checked on the interpolant after every
    accepted step; a terminal one ends the solve (t_out[-1] may then be +-inf)."""
    solver = as_solver(method)
    if jump is not None and not land_on_outputs:
        raise ValueError("jump needs land_on_outputs=True: the state can only change at an output time")
    solver.check_adaptive()
    control = solver.controller(ctrl)
    n = len(t_out)
    t0 = float(t_out[0])
    direction = 1.0 if t_out[-1] >= t0 else -1.0
    differentiable = t_tensor is not None and t_tensor.requires_grad
    anchor = t_tensor[0].to(device=y0.device, dtype=torch.float64) if t_tensor is not None and differentiable else None
    clip_to_outputs = land_on_outputs or solver.lands_on_outputs()
    stops = _Stops(ctrl, t0, direction)
    times = StepTimes(y0.dtype, y0.device, anchor=anchor, t0=t0, jumps=frozenset(ctrl.jump_t))
    if stops.jumps and getattr(solver, "attempt", None) is not None:
        raise ValueError("jump_t needs eager steps (compile=False)")
    outs: List[Tensor] = []
    t, y = t0, y0
    k1, h_first = _first_step(solver, f, y0, t0, h0, ctrl, norm, direction, times)
    h = control.first(h_first, direction)
    err_prev = 1.0
    nxt = 1
    attempts = 0
    while nxt < n:
        if attempts >= ctrl.max_steps:
            raise SolverError(f"reached max_steps={ctrl.max_steps}", t, h, MAX_STEPS_HINT)
        attempts += 1
        h_proposed = h
        land = _landing(t, h, t_out[nxt] if clip_to_outputs else None, stops.next(), direction)
        if land is not None:
            h = land - t
        t1 = t + h if land is None else land
        on_jump = land is not None and land in stops.jumps
        if hooks is not None:
            hooks.step(t, y, h)
        res = solver.step(f, norm, y, k1, t, h, t1, times, on_jump)
        en = res.error
        stats.steps += 1
        if res.y1 is not None and res.dense is not None and control.accepts(en, h):
            y1 = res.y1
            stats.accepted += 1
            if hooks is not None:
                hooks.accept(t, y, h)
            dense = res.dense
            step, t_end = StepOutputs(dense, y1), t1
            if events is not None:
                at = lambda tt, t=t, h=h, d=dense: d.at((tt - t) / h)  # noqa: E731
                # a step past the last output time (dense output, no landing) is searched only up to it
                past = (t1 - t_out[-1]) * direction > 0
                t_chk, y_chk = (t_out[-1], at(t_out[-1])) if past else (t1, y1)
                if events.check(t, y, t_chk, y_chk, at):
                    t_end = events.terminal.t
            while nxt < n and (t_out[nxt] - t_end) * direction <= 0:
                theta: Union[float, Tensor] = (t_out[nxt] - t) / h
                if t_tensor is not None and anchor is not None:  # differentiable output times
                    theta = (t_tensor[nxt].to(y0.device, torch.float64) - (anchor + (t - t0))) / h
                step.output(t_out[nxt] == t1, theta, differentiable)
                nxt += 1
            outs.extend(step.outputs())
            if t_end != t1:
                return outs, h  # a terminal event
            t, y, k1 = t1, y1, res.carry()
            stops.passed(t1, direction)
            if jump is not None and nxt < n and t_out[nxt - 1] == t1:
                y, k1 = jump(nxt - 1, y1), None
            if on_jump:  # f anew, just past the discontinuity (`times` moves the step's start there)
                k1 = None
            factor, err_prev = control.accepted(en, err_prev)
        else:
            stats.rejected += 1
            if hooks is not None:
                hooks.reject(t, y, h)
            factor = control.rejected(en if res.y1 is not None else math.inf, t, h)
        h = control.next(h_proposed if land is not None and res.y1 is not None and en <= 1.0 else h, factor)
    return outs, h
