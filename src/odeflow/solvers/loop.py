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
from .explicit_methods import EXPLICIT_METHODS
from .hooks import StepHooks
from .runge_kutta import LOW_PRECISION, Step, dense_outputs, interpolate, rk_step, rk_step_compensated
from .solution import SolverStats
from .state import ErrorNorm
from .stepping import Adaptive, initial_step
from .tableau import ButcherTableau

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


def real_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype of times handed to f: the state's, or its real counterpart for complex states."""
    return torch.empty((), dtype=dtype).real.dtype if dtype.is_complex else dtype


def perturb_stage_times(table: Tensor, c: Sequence[float], direction: float) -> Tensor:
    """Stage times with c = 0 moved one ulp into the step and c = 1 one ulp back from its end
    (torchdiffeq's perturb): f that jumps at a grid point is evaluated on the step's side.
    Next to 0 the shift is to the smallest normal number instead of a subnormal one (which
    flush-to-zero arithmetic would turn back into 0, the discontinuity itself).
    The shift carries no gradient (the times themselves still do)."""
    out = table.clone()
    tiny = torch.finfo(table.dtype).tiny
    for j, cj in enumerate(c):
        if cj in (0.0, 1.0):
            col = table[..., j].detach()
            toward = col + (direction if cj == 0.0 else -direction)
            moved = torch.nextafter(col, toward)
            moved = torch.where(moved.abs() < tiny, torch.sign(toward - col) * tiny, moved)
            out[..., j] = table[..., j] + (moved - col)
    return out


def integrate_fixed(
    tab: ButcherTableau,
    f: Func,
    y0: Tensor,
    grid: FixedGrid,
    stats: SolverStats,
    first: int = 0,
    last: Optional[int] = None,
    k1: Optional[Tensor] = None,
    hooks: Optional[StepHooks] = None,
) -> Tuple[List[Tensor], Tensor, Optional[Tensor]]:
    """Steps ``first`` .. ``last``-1 of the grid from y0. Returns (states at the output times
    crossed, final state, carried FSAL derivative). Output times are grid points."""
    last = len(grid) if last is None else last
    outs: List[Tensor] = []
    y = y0
    reuse = tab.fsal and not grid.perturb
    compensate = y0.dtype in LOW_PRECISION
    carry: Optional[Tensor] = None
    for i in range(first, last):
        ts = grid.times(i)
        if hooks is not None:
            hooks.step(float(ts[0]), y, float(grid.h[i]))
        if k1 is None:
            k1 = f(ts[0], y)
        y_start = y
        if compensate:
            y, carry, ks = rk_step_compensated(tab, f, y, carry, k1, ts, grid.h[i])
        else:
            y, ks, _ = rk_step(tab, f, y, k1, ts, grid.h[i], False)
        if hooks is not None:
            hooks.accept(float(ts[0]), y_start, float(grid.h[i]))
        k1 = ks[-1] if reuse else None
        if i + 1 in grid.output_steps:
            outs.append(y)
    stats.steps += last - first
    stats.accepted += last - first
    return outs, y, k1


class _Times:
    """Maps float64 host times to the 0-d tensors handed to f, optionally differentiable
    with respect to the initial time through an anchor tensor."""

    def __init__(self, t0: float, dtype: torch.dtype, device: torch.device, anchor: Optional[Tensor]) -> None:
        self.t0, self.dtype, self.device, self.anchor = t0, real_dtype(dtype), device, anchor

    def one(self, t: float) -> Tensor:
        return self.many([t])[0]

    def many(self, ts: List[float]) -> Tensor:
        """The times as one 1-D tensor of the state's dtype."""
        if self.anchor is None:
            return torch.tensor(ts, dtype=torch.float64).to(self.device, self.dtype)
        offsets = torch.tensor([t - self.t0 for t in ts], dtype=torch.float64, device=self.device)
        return (self.anchor + offsets).to(self.dtype)


Attempt = Callable[..., Tuple[Tensor, Sequence[Tensor], Tensor]]  # (y, k1, t, h, times[, on_jump])


def try_step(
    tab: ButcherTableau,
    f: Func,
    norm: ErrorNorm,
    y: Tensor,
    k1: Optional[Tensor],
    stage_times: Sequence[Tensor],
    h: Step,
) -> Tuple[Tensor, List[Tensor], Tensor]:
    """One attempted step: (y1, stage derivatives, error norm as a 0-d tensor); eager, or
    traced whole by the compiled solver."""
    if k1 is None:
        k1 = f(stage_times[0], y)
    y1, ks, err = rk_step(tab, f, y, k1, stage_times, h, True)
    assert err is not None
    return y1, ks, norm(err.detach(), y.detach(), y1.detach())


def eager_attempt(tab: ButcherTableau, f: Func, norm: ErrorNorm) -> Attempt:
    """Attempted steps from (t, y) with step h in eager mode (see `try_step`)."""

    def attempt(y: Tensor, k1: Optional[Tensor], t: float, h: float, times: _Times, before_jump: bool = False):
        stage_t = times.many([t + ci * h for ci in tab.c])
        if before_jump:  # the stages at the step's end see f from before the jump
            stage_t = perturb_stage_times(
                stage_t[None], [ci if ci == 1.0 else 0.5 for ci in tab.c], 1.0 if h > 0 else -1.0
            )[0]
        return try_step(tab, f, norm, y, k1, list(stage_t.unbind()), h)

    return attempt


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


def integrate_adaptive(
    tab: ButcherTableau,
    f: Func,
    y0: Tensor,
    t_out: Sequence[float],
    ctrl: Adaptive,
    norm: ErrorNorm,
    stats: SolverStats,
    h0: Optional[float] = None,
    t_tensor: Optional[Tensor] = None,
    attempt: Optional[Attempt] = None,
    land_on_outputs: bool = False,
    jump: Optional[Callable[[int, Tensor], Tensor]] = None,
    hooks: Optional[StepHooks] = None,
    events=None,
) -> Tuple[List[Tensor], float]:
    """Adaptive solve through the output times t_out (monotone, either direction); steps are
    not shortened to hit an output time: outputs come from the dense output (methods of order
    > 3 without a continuous extension, i.e. dopri8, land on output times instead).

    Returns the states at t_out[1:] and the step size the controller proposes next (so a
    caller that continues from here, e.g. the adjoint, need not restart step selection).
    With ``t_tensor`` requiring grad, stage times and interpolation points are differentiable
    in the output times (the discrete model's exact time derivative). ``attempt`` replaces
    the eager step attempt (stages and error norm), e.g. by a compiled one. With
    ``land_on_outputs`` steps are shortened to end on the output times instead; then
    ``jump(i, y)``, if given, replaces the state at every interior output time t_out[i] (a
    discontinuity such as the adjoint's dL/dy(t_i); outputs hold the states before the jump).
    ``hooks``: step callbacks. ``events`` (an `events.EventWatcher`): checked after every
    accepted step on the dense output; a terminal event ends the solve there (the outputs
    returned are those before it). t_out[-1] may be +-inf when a terminal event ends the solve.
    """
    if not tab.adaptive:
        valid = sorted(m.name for m in EXPLICIT_METHODS.values() if m.adaptive)
        raise ValueError(
            f"method {tab.name!r} has no error estimate for adaptive stepping; use FixedStep(h) or one of {valid}"
        )
    n = len(t_out)
    t0 = float(t_out[0])
    direction = 1.0 if t_out[-1] >= t0 else -1.0
    if jump is not None and not land_on_outputs:
        raise ValueError("jump needs land_on_outputs=True: the state can only change at an output time")
    differentiable = t_tensor is not None and t_tensor.requires_grad
    anchor = t_tensor[0].to(device=y0.device, dtype=torch.float64) if t_tensor is not None and differentiable else None
    times = _Times(t0, y0.dtype, y0.device, anchor)
    q = min(tab.order, tab.error_order or tab.order) + 1
    # Cubic Hermite output is third order: fine for bosh3/heun, too coarse for dopri8.
    clip_to_outputs = land_on_outputs or (tab.dense is None and tab.order > 3)
    stops = _Stops(ctrl, t0, direction)
    if attempt is None:
        attempt = eager_attempt(tab, f, norm)
    elif stops.jumps:
        raise ValueError("jump_t needs eager steps (compile=False)")
    outs: List[Tensor] = []
    t, y = t0, y0
    k1: Optional[Tensor] = None  # else the first attempt evaluates it (inside a compiled step)
    if h0 is None and ctrl.first_step is None:
        k1 = f(times.one(t), y)
        with torch.no_grad():
            h0 = initial_step(f, t0, y0.detach(), k1.detach(), tab.order, norm, direction, times.one)
    h_first = h0 if h0 is not None else ctrl.first_step
    assert h_first is not None
    h = ctrl.clamp(direction * abs(h_first))
    err_prev = 1.0
    nxt = 1
    attempts = 0
    nonfinite = False
    while nxt < n:
        if attempts >= ctrl.max_steps:
            raise SolverError(
                f"reached max_steps={ctrl.max_steps}",
                t,
                h,
                "raise max_steps, loosen rtol/atol, or check whether the ODE is stiff",
            )
        attempts += 1
        h_proposed = h
        land = None
        if clip_to_outputs and (t + h - t_out[nxt]) * direction > 0:
            # Land on the output time exactly (asked for, or no interpolant of matching order).
            land, h = t_out[nxt], t_out[nxt] - t
        stop = stops.next()
        if stop is not None and (t + h - stop) * direction > 0 and (land is None or (land - stop) * direction > 0):
            land, h = stop, stop - t
        on_jump = land is not None and land in stops.jumps
        if hooks is not None:
            hooks.step(t, y, h)
        if on_jump:
            y1, ks, en_t = attempt(y, k1, t, h, times, True)
        else:
            y1, ks, en_t = attempt(y, k1, t, h, times)
        en = float(en_t)  # the step's one host sync
        stats.steps += 1
        # A step at the smallest allowed size is taken whatever its error (as torchdiffeq does).
        if en <= 1.0 or (ctrl.min_step > 0 and abs(h) <= ctrl.min_step and math.isfinite(en)):
            stats.accepted += 1
            if hooks is not None:
                hooks.accept(t, y, h)
            t1 = t + h if land is None else land
            f1 = ks[-1] if tab.fsal else None
            t_end = t1
            if events is not None:

                def dense(tt: float, y=y, y1=y1, ks=ks, t=t, h=h, t1=t1) -> Tensor:
                    nonlocal f1
                    if tab.dense is None and f1 is None:
                        f1 = f(times.one(t1), y1)
                    return interpolate(tab, y, y1, ks, f1, (tt - t) / h, h)

                if events.check(t, y, t1, y1, dense):
                    t_end = events.terminal.t
            first, thetas = len(outs), []
            while nxt < n and (t_out[nxt] - t_end) * direction <= 0:
                if t_out[nxt] == t1 and not differentiable:
                    outs.append(y1)
                elif tab.dense is not None and not differentiable:
                    thetas.append((t_out[nxt] - t) / h)  # filled in below, all at once
                    outs.append(y1)
                else:
                    if tab.dense is None and f1 is None:
                        f1 = f(times.one(t1), y1)
                    theta: Union[float, Tensor]
                    if t_tensor is not None and anchor is not None:  # differentiable output times
                        theta = (t_tensor[nxt].to(y0.device, torch.float64) - (anchor + (t - t0))) / h
                    else:
                        theta = (t_out[nxt] - t) / h
                    outs.append(interpolate(tab, y, y1, ks, f1, theta, h))
                nxt += 1
            if thetas:
                outs[first : first + len(thetas)] = dense_outputs(tab, y, ks, thetas, h)
            if t_end != t1:
                return outs, h  # a terminal event
            t, y, k1 = t1, y1, f1
            stops.passed(t1, direction)
            if jump is not None and nxt < n and t_out[nxt - 1] == t1:
                y, k1 = jump(nxt - 1, y1), None
            if on_jump:  # f anew, just past the discontinuity
                after = times.one(t1)
                k1 = f(torch.nextafter(after, after + direction), y)
            factor = (
                ctrl.max_factor if en == 0.0 else (ctrl.safety * en ** (-ctrl.alpha / q) * err_prev ** (ctrl.beta / q))
            )
            factor = min(ctrl.max_factor, max(ctrl.min_factor, factor))
            err_prev = max(en, 1e-4)
            nonfinite = False
        else:
            stats.rejected += 1
            if hooks is not None:
                hooks.reject(t, y, h)
            nonfinite = not math.isfinite(en)
            factor = ctrl.min_factor if nonfinite else max(ctrl.min_factor, ctrl.safety * en ** (-1.0 / q))
            factor = min(factor, 1.0)
            if abs(h) <= ctrl.min_step or t + h * factor == t:
                why = (
                    "the state or its error estimate became non-finite (NaN/inf): the solution may blow up "
                    "here; check the vector field or shorten the time span"
                    if nonfinite
                    else "the problem may be stiff or singular here; loosen rtol/atol or lower min_step"
                )
                raise SolverError("step size underflow", t, h, why)
        h = ctrl.clamp((h_proposed if land is not None and en <= 1.0 else h) * factor)
        if ctrl.min_step > 0 and abs(h) < ctrl.min_step:
            h = math.copysign(ctrl.min_step, h)
    return outs, h
