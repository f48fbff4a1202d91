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


MAX_STEPS_HINT = "raise max_steps, loosen rtol/atol, or check whether the ODE is stiff"


def _first_step(tab, f, y0: Tensor, t0: float, h0: Optional[float], ctrl: Adaptive, norm, direction: float, times):
    """(f(t0, y0) or None, the first step): h0 or ctrl.first_step as given, else Hairer's
    initial-step rule (which needs f(t0, y0); without it the first attempt evaluates it)."""
    k1: Optional[Tensor] = None
    if h0 is None and ctrl.first_step is None:
        k1 = f(times.one(t0), y0)
        with torch.no_grad():
            h0 = initial_step(f, t0, y0.detach(), k1.detach(), tab.order, norm, direction, times.one)
    h_first = h0 if h0 is not None else ctrl.first_step
    assert h_first is not None
    return k1, ctrl.clamp(direction * abs(h_first))


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


def _check_adaptive(tab: ButcherTableau, jump_without_landing: bool = False) -> None:
    if jump_without_landing:
        raise ValueError("jump needs land_on_outputs=True: the state can only change at an output time")
    if not tab.adaptive:
        valid = sorted(m.name for m in EXPLICIT_METHODS.values() if m.adaptive)
        raise ValueError(
            f"method {tab.name!r} has no error estimate for adaptive stepping; use FixedStep(h) or one of {valid}"
        )


def accept_factor(ctrl: Adaptive, en: float, err_prev: float, q: int) -> float:
    """PI controller after an accepted step (Hairer, Norsett & Wanner II, IV.2; Soederlind):
    safety * en^(-alpha/q) * en_prev^(beta/q), clipped to [min_factor, max_factor]."""
    factor = ctrl.max_factor if en == 0.0 else ctrl.safety * en ** (-ctrl.alpha / q) * err_prev ** (ctrl.beta / q)
    return min(ctrl.max_factor, max(ctrl.min_factor, factor))


def reject_factor(ctrl: Adaptive, en: float, q: int, t: float, h: float) -> float:
    """The shrink factor after a rejected step, safety * en^(-1/q) in [min_factor, 1] (min_factor
    for a non-finite error); SolverError when the step cannot shrink any further."""
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
    return factor


class _Step:
    """The outputs that fall inside one accepted step [t, t1]: the end state where an output time
    is t1, the method's dense output (all such points at once) or the cubic Hermite interpolant
    (which needs f at t1: evaluated once, kept as ``f1``)."""

    def __init__(self, tab, f, times, t, h, t1, y, y1, ks, f1) -> None:
        self.tab, self.f, self.times, self.t, self.h, self.t1 = tab, f, times, t, h, t1
        self.y, self.y1, self.ks, self.f1 = y, y1, ks, f1
        self._outs: List[Optional[Tensor]] = []
        self._thetas: List[Tuple[int, float]] = []

    def output(self, at_end: bool, theta: Union[float, Tensor], differentiable: bool) -> None:
        tab = self.tab
        if at_end and not differentiable:
            self._outs.append(self.y1)
        elif tab.dense is not None and not differentiable:
            self._thetas.append((len(self._outs), float(theta)))  # filled in all at once
            self._outs.append(None)
        else:
            if tab.dense is None and self.f1 is None:
                self.f1 = self.f(self.times.one(self.t1), self.y1)
            self._outs.append(interpolate(tab, self.y, self.y1, self.ks, self.f1, theta, self.h))

    def dense(self, tt: float) -> Tensor:
        """The state at time tt inside the step (for event location)."""
        if self.tab.dense is None and self.f1 is None:
            self.f1 = self.f(self.times.one(self.t1), self.y1)
        return interpolate(self.tab, self.y, self.y1, self.ks, self.f1, (tt - self.t) / self.h, self.h)

    def outputs(self) -> List[Tensor]:
        if self._thetas:
            dense = dense_outputs(self.tab, self.y, self.ks, [th for _, th in self._thetas], self.h)
            for (i, _), value in zip(self._thetas, dense):
                self._outs[i] = value
        return [o for o in self._outs if o is not None]


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
    """Adaptive solve through the output times t_out (monotone, either direction): outputs come
    from the dense output (dopri8, of order > 3 with no continuous extension, lands on them).
    Returns the states at t_out[1:] and the next proposed step (the adjoint continues with it).
    ``t_tensor`` requiring grad: stage times and interpolation points are differentiable in the
    output times. ``attempt`` replaces the eager step attempt (e.g. by a compiled one).
    ``land_on_outputs``: steps end on the output times, where ``jump(i, y)`` may replace the
    state (the adjoint's dL/dy(t_i); outputs hold the states before the jump). ``hooks``: step
    callbacks. ``events`` (`events.EventWatcher`): checked on the dense output after every
    accepted step; a terminal one ends the solve (t_out[-1] may then be +-inf)."""
    _check_adaptive(tab, jump is not None and not land_on_outputs)
    n = len(t_out)
    t0 = float(t_out[0])
    direction = 1.0 if t_out[-1] >= t0 else -1.0
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
    k1, h = _first_step(tab, f, y0, t0, h0, ctrl, norm, direction, times)
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
        on_jump = land is not None and land in stops.jumps
        if hooks is not None:
            hooks.step(t, y, h)
        y1, ks, en_t = attempt(y, k1, t, h, times, True) if on_jump else attempt(y, k1, t, h, times)
        en = float(en_t)  # the step's one host sync
        stats.steps += 1
        # A step at the smallest allowed size is taken whatever its error (as torchdiffeq does).
        if en <= 1.0 or (ctrl.min_step > 0 and abs(h) <= ctrl.min_step and math.isfinite(en)):
            stats.accepted += 1
            if hooks is not None:
                hooks.accept(t, y, h)
            t1 = t + h if land is None else land
            f1 = ks[-1] if tab.fsal else None
            step, t_end = _Step(tab, f, times, t, h, t1, y, y1, ks, f1), t1
            if events is not None and events.check(t, y, t1, y1, step.dense):
                t_end = events.terminal.t
            while nxt < n and (t_out[nxt] - t_end) * direction <= 0:
                theta: Union[float, Tensor] = (t_out[nxt] - t) / h
                if t_tensor is not None and anchor is not None:  # differentiable output times
                    theta = (t_tensor[nxt].to(y0.device, torch.float64) - (anchor + (t - t0))) / h
                step.output(t_out[nxt] == t1, theta, differentiable)
                nxt += 1
            outs.extend(step.outputs())
            f1 = step.f1
            if t_end != t1:
                return outs, h  # a terminal event
            t, y, k1 = t1, y1, f1
            stops.passed(t1, direction)
            if jump is not None and nxt < n and t_out[nxt - 1] == t1:
                y, k1 = jump(nxt - 1, y1), None
            if on_jump:  # f anew, just past the discontinuity
                after = times.one(t1)
                k1 = f(torch.nextafter(after, after + direction), y)
            factor = accept_factor(ctrl, en, err_prev, q)
            err_prev = max(en, 1e-4)
        else:
            stats.rejected += 1
            if hooks is not None:
                hooks.reject(t, y, h)
            factor = reject_factor(ctrl, en, q, t, h)
        h = ctrl.clamp((h_proposed if land is not None and en <= 1.0 else h) * factor)
        if ctrl.min_step > 0 and abs(h) < ctrl.min_step:
            h = math.copysign(ctrl.min_step, h)
    return outs, h
