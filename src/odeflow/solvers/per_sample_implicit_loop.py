"""The adaptive implicit loop per sample: every row its own steps with `per_sample_implicit._RowStep`.

Each attempted step: every running row's Newton solve and filtered error estimate, its error
norm (`per_sample_norm`), the I-controller of `implicit.ImplicitRK` (Hairer & Wanner II
§IV.8), h_b' = h_b clip(safety err_b^(-1/q)), the outputs reached (cubic Hermite, or the
step's end where it lands on an output time), one host read, the commit. With
``PerSample(compact=...)`` the step covers the running rows only once few are left; with
``extras.land_on_outputs`` steps end on the output times, where ``extras.jump`` may replace the
state (the per-sample adjoint's backward solve).
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Tuple

import torch
from torch import Tensor

from .compiled import compile_key
from .errors import SolverError
from .implicit import ImplicitRK
from .per_sample import LoopExtras, PerSample, SampleCounts, _Field, _initial_step, _put, _rows
from .per_sample_implicit import _Events, _hermite, _RowStep
from .per_sample_norm import SampleNorm
from .per_sample_stops import SampleStops, nudge, nudge_stages
from .stepping import Adaptive


class ImplicitLoop:
    """Every row of y0 [B, ...] through its own output times t_out [B, T]; see `integrate_implicit_per_sample`."""

    def __init__(
        self,
        method: ImplicitRK,
        f: Callable,
        y0: Tensor,
        t_out: Tensor,
        ctrl: Adaptive,
        options: PerSample,
        extras: LoopExtras,
        compile: bool = False,
    ) -> None:
        self.method, self.ctrl, self.options, self.extras = method, ctrl, options, extras
        self.rtol, self.atol = float(ctrl.rtol), float(ctrl.atol)  # type: ignore[arg-type]  # checked by the caller
        self.B, self.T = t_out.shape
        self.dev, self.dtype, self.y0, self.t_out = y0.device, y0.dtype, y0, t_out
        self.field = _Field(f, self.dtype, self.B, self.dev, options.compact > 0)
        key = compile_key("per-sample-newton", method, f, y0) if compile else None
        self.step = _RowStep(method, self.field, self.dtype, self.dev, extras.jacobian, key)
        self.norm = SampleNorm(ctrl, y0)
        self.stops = SampleStops(ctrl, options.step_t, options.jump_t, t_out)
        B, dev = self.B, self.dev
        self.direction = (
            torch.sign(t_out[:, -1] - t_out[:, 0]) if self.T > 1 else torch.ones(B, dtype=torch.float64, device=dev)
        )
        self.control = method.controller(ctrl)  # the I-controller of the adaptive loop
        if extras.jump is not None and not extras.land_on_outputs:
            raise ValueError("jump needs land_on_outputs=True: the state can only change at an output time")
        self.lands = extras.land_on_outputs
        self.t_fwd = (t_out * self.direction.unsqueeze(1)).contiguous()
        self.all_rows = torch.arange(B, device=dev)

    def run(self) -> Tuple[Tensor, SampleCounts, int]:
        """(states [T, B, ...] with y0 first, per-sample counts, batched evaluations of f)."""
        B, T, dev, y0, ctrl = self.B, self.T, self.dev, self.y0, self.ctrl
        self.ys = torch.zeros((T + 1,) + tuple(y0.shape), dtype=self.dtype, device=dev)  # row T: scratch
        self.ys[0] = y0
        self.steps = torch.zeros(B, dtype=torch.int64, device=dev)
        self.accepted, self.rejected = self.steps.clone(), self.steps.clone()
        self.t, self.y = self.t_out[:, 0].clone(), y0
        self.events = None
        if T > 1:
            if self.extras.h0 is not None:
                h = self.extras.h0.to(torch.float64).abs()
            elif ctrl.first_step is None:
                with torch.no_grad():
                    f0 = self.field(self.t, y0.detach(), None)
                    h = _initial_step(
                        lambda tt, yy: self.field(tt, yy, None), self.t, y0.detach(), f0, self.method.order,
                        self.rtol, self.atol, self.direction, lambda r: self.norm(r, None),
                    )  # fmt: skip
            else:
                h = torch.full((B,), float(ctrl.first_step), dtype=torch.float64, device=dev)
            self.h = self.control.clamp(self.direction * h)
            self.nxt = torch.ones(B, dtype=torch.int64, device=dev)
            if self.extras.events is not None:
                self.events = _Events(self.extras, self.t, y0)
            n_active = B
            while n_active > 0:
                compact = n_active <= self.options.compact * B and n_active < B
                n_active = self._attempt((self.nxt < T).nonzero().reshape(-1) if compact else None)
            self.extras.h_next = self.h
            if self.events is not None:
                self.events.finish()
        counts = SampleCounts(self.steps.cpu(), self.accepted.cpu(), self.rejected.cpu(), self.field.row_evals.cpu())
        return self.ys[:T], counts, self.field.calls

    def _attempt(self, idx: Optional[Tensor]) -> int:
        """One attempted step of the rows ``idx`` (all: None); returns the rows still running."""
        ctrl, T, ex = self.ctrl, self.T, self.extras
        sub = (lambda x: x) if idx is None else (lambda x: x.index_select(0, idx))
        t, y, nxt, h_prev = sub(self.t), sub(self.y), sub(self.nxt), sub(self.h)
        t_out, t_fwd, direction = sub(self.t_out), sub(self.t_fwd), sub(self.direction)
        rows = self.all_rows if idx is None else idx
        act = nxt < T
        h = torch.where(act, h_prev, torch.zeros_like(h_prev))
        target = t_out.gather(1, nxt.clamp(max=T - 1).unsqueeze(1)).squeeze(1)
        land = act & ((t + h - target) * direction > 0) if self.lands else torch.zeros_like(act)
        h_try = torch.where(land, target - t, h)
        land_out = land  # landing on an output time
        stops, nudged, t_start, t1_f = self.stops, None, None, None
        if stops.any:  # a step that would pass the row's next stop (step_t, jump_t) ends on it
            h_try, target, land, land_out = stops.end_on_stops(act, t, h_try, target, land, direction, idx)
        if stops.has_jumps:  # f on the step's side of a discontinuity
            jump_end, after = land & stops.at_jump(target, idx), act & stops.at_jump(t, idx)
            c, dt = self.method.tableau.c, self.dtype
            nudged = lambda ts: nudge_stages(ts, c, after, jump_end, direction, dt)  # noqa: E731
            t_start = nudge(t, after, direction, dt)
            t1_f = nudge(torch.where(land, target, t + h_try), jump_end, -direction, dt)
        scale = self.atol + self.rtol * y.detach().abs()
        y1, err, f0, ok = self.step(t, y, h_try, act, scale, idx, nudged, t_start)
        with torch.no_grad():
            en = self.norm(err / (self.atol + self.rtol * torch.maximum(y.detach().abs(), y1.detach().abs())), idx)
            en = torch.where(ok, en, torch.full_like(en, math.inf))
        good = ok & (en <= 1.0)
        if ctrl.min_step > 0:
            good = good | (ok & (h_try.abs() <= ctrl.min_step) & torch.isfinite(en))
        acc, rej = act & good, act & ~good
        if ex.on_step is not None:
            ex.on_step(self.step.stage_t, self.step.stage_y, h_try, acc, idx)
        t1 = torch.where(land, target, t + h_try)
        if ex.record is not None:
            ex.record(t, y, f0, t1, y1, acc, idx)
        upto = torch.searchsorted(t_fwd, (t1 * direction).unsqueeze(1), right=True).squeeze(1)
        hit, f1 = None, None
        if self.events is not None:
            hit, upto, f1 = self.events.step(
                t, t1, h_try, y, y1, f0, self.field, acc, upto, t_fwd, direction, idx, t1_f
            )
        n_reached = torch.where(acc, (upto - nxt).clamp_min(0), torch.zeros_like(nxt))
        factor = self.control.factors(en, good)
        underflow = rej & ((t + h_try * factor == t) | (h_try.abs() <= ctrl.min_step))
        steps = sub(self.steps) + act.to(torch.int64)
        over = act & (steps > ctrl.max_steps)
        nxt_new = nxt + n_reached if hit is None else torch.where(hit, T, nxt + n_reached)
        jumped = land_out & acc & (nxt_new < T) if ex.jump is not None else None
        parts = [n_reached.max(), underflow.sum(), over.sum(), (nxt_new < T).sum()]
        info = torch.stack(parts + ([jumped.sum()] if jumped is not None else [])).tolist()
        max_reached, n_under, n_over, n_active = info[:4]
        if n_under or n_over:
            bad = underflow if n_under else over
            i = int(bad.nonzero()[0, 0])
            what = "step size underflow" if n_under else f"reached max_steps={ctrl.max_steps}"
            raise SolverError(
                f"{what} in sample {int(rows[i])} ({self.method.name})",
                float(t[i]),
                float(h_try[i]),
                "loosen rtol/atol or check f",
            )
        if max_reached:
            t1_eval = t1 if t1_f is None else t1_f
            self._write(int(max_reached), rows, t, t1, t1_eval, h_try, y, y1, f0, f1, nxt, n_reached, t_out, idx)
        t_new = torch.where(acc, t1, t)
        y_new = torch.where(_rows(acc, y), y1, y)
        if jumped is not None and info[4]:
            assert ex.jump is not None
            y_new = ex.jump(nxt_new - 1, jumped, y_new, idx)
        if stops.any:
            stops.passed(t1, acc, idx)
        base = torch.where(land & ok & (en <= 1.0), h, h_try)  # a landed step does not shrink the next
        h_new = torch.where(act, self.control.clamp(base * factor), h_prev)
        acc64, rej64 = acc.to(torch.int64), rej.to(torch.int64)
        self.t, self.y, self.h = _put(self.t, t_new, idx), _put(self.y, y_new, idx), _put(self.h, h_new, idx)
        self.nxt, self.steps = _put(self.nxt, nxt_new, idx), _put(self.steps, steps, idx)
        if idx is None:
            self.accepted, self.rejected = self.accepted + acc64, self.rejected + rej64
        else:
            self.accepted, self.rejected = (
                self.accepted.index_add(0, idx, acc64),
                self.rejected.index_add(0, idx, rej64),
            )
        return int(n_active)

    def _write(self, max_reached, rows, t, t1, t1_eval, h_try, y, y1, f0, f1, nxt, n_reached, t_out, idx) -> None:
        """The outputs t_out[b, nxt_b .. nxt_b + n_reached_b) of the step: its end where an
        output time is t1, else the cubic Hermite interpolant (which needs f(t1, y1))."""
        T = self.T
        if f1 is None:
            f1 = self.field(t1_eval, y1, idx)
        h_safe = torch.where(h_try == 0, torch.ones_like(h_try), h_try)
        if max_reached > 1:  # every output of the step at once: the rows repeated once per output slot
            s_idx = torch.arange(max_reached, device=nxt.device).repeat_interleave(nxt.shape[0])
            rep = lambda x: x.repeat(max_reached, *([1] * (x.dim() - 1)))  # noqa: E731
            t, t1, h_try, h_safe, nxt, n_reached, t_out, rows = map(
                rep, (t, t1, h_try, h_safe, nxt, n_reached, t_out, rows)
            )
            y, y1, f0, f1 = map(rep, (y, y1, f0, f1))
        else:
            s_idx = torch.zeros_like(nxt)
        j = (nxt + s_idx).clamp(max=T - 1)
        tj = t_out.gather(1, j.unsqueeze(1)).squeeze(1)
        herm = _hermite(y, y1, f0, f1, (tj - t) / h_safe, h_try)
        val = torch.where(_rows(tj == t1, y), y1, herm)
        # slots past a row's last reached output write to the scratch row T (never read)
        self.ys.index_put_((torch.where(s_idx < n_reached, j, T), rows), val)


def integrate_implicit_per_sample(
    method: ImplicitRK,
    f: Callable,
    y0: Tensor,
    t_out: Tensor,
    ctrl: Adaptive,
    options: Optional[PerSample] = None,
    extras: Optional[LoopExtras] = None,
    compile: bool = False,
) -> Tuple[Tensor, SampleCounts, int]:
    """Adaptive implicit solve of every row of y0 [B, ...] through its own output times t_out
    [B, T] (float64, rows strictly monotone; ``compile``: each step's Newton iterations on
    every row one compiled call); f(t [B], y) or, with ``options.compact``,
    f(t, y, rows), as for `per_sample_loop.integrate_per_sample`. ``extras``: terminal events
    (filled in: event_hit, event_t, event_y, event_component), a given first step, landing on
    the outputs with jumps, step callbacks and a given Jacobian (`LoopExtras`). Returns (states
    [T, B, ...], per-sample counts, batched evaluations of f)."""
    ex = LoopExtras() if extras is None else extras
    return ImplicitLoop(method, f, y0, t_out, ctrl, options or PerSample(), ex, compile).run()
