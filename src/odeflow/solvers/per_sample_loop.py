"""The per-sample adaptive loop in named steps (`integrate_per_sample` below runs it).

One attempted step of every running row: `_attempt` (the stages and each row's error norm),
`_events` (terminal events inside the step), `_control` (the PI controller and the outputs
reached), `_read` (the step's one host read and its failures), `_write` (the outputs of the
step) and `_commit` (the rows' new time, step, state and counts). The equations are those of
`per_sample` (Hairer & Wanner I eq. 4.11 per row, the PI controller of Hairer & Wanner II §IV.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import torch
from torch import Tensor

from . import per_sample_compiled
from .controller import PIController
from .errors import SolverError
from .per_sample import (
    LoopExtras,
    PerSample,
    SampleCounts,
    _coefficients,
    _event_dense,
    _Field,
    _initial_step,
    _lincomb,
    _output,
    _outputs,
    _put,
    _rk_step,
    _rows,
)
from .per_sample_norm import SampleNorm
from .per_sample_stops import SampleStops, nudge, nudge_stages
from .stepping import Adaptive
from .tableau import ButcherTableau


def _nograd(x: Tensor) -> Tensor:
    """x without its graph (x itself when it has none: no detach op per tensor under no_grad)."""
    return x.detach() if x.requires_grad else x


@dataclass
class _Attempt:
    """One attempted step of the rows ``idx`` (all rows when None): their slices of the loop's
    state, the step's stages and decisions; `_control` fills in the rest."""

    idx: Optional[Tensor]
    rows: Tensor
    t: Tensor
    y: Tensor
    nxt: Tensor
    t_out: Tensor
    direction: Tensor
    act: Tensor
    h: Tensor
    land: Tensor
    target: Tensor
    h_try: Tensor
    k1: Tensor
    y1: Tensor
    ks: List[Tensor]
    hks: List[Tensor]
    en: Tensor
    ok: Tensor
    acc: Tensor
    rej: Tensor
    t1: Tensor
    f1: Optional[Tensor]
    h_safe: Tensor
    upto: Tensor
    hit: Optional[Tensor] = None
    n_reached: Optional[Tensor] = None
    h_next: Optional[Tensor] = None
    steps: Optional[Tensor] = None
    nxt_new: Optional[Tensor] = None
    jumped: Optional[Tensor] = None
    underflow: Optional[Tensor] = None
    over: Optional[Tensor] = None
    err_prev: Optional[Tensor] = None
    land_out: Optional[Tensor] = None
    jump_end: Optional[Tensor] = None
    t1_f: Optional[Tensor] = None


class PerSampleLoop:
    """Every row of y0 [B, ...] through its own output times t_out [B, T]; see `integrate_per_sample`."""

    def __init__(
        self,
        tab: ButcherTableau,
        f: Callable,
        y0: Tensor,
        t_out: Tensor,
        ctrl: Adaptive,
        options: PerSample,
        extras: Optional[LoopExtras],
        compile: bool = False,
    ) -> None:
        if not tab.adaptive:
            raise ValueError(f"per_sample=True needs an adaptive method; {tab.name!r} has no error estimate")
        if not isinstance(ctrl.rtol, (int, float)) or not isinstance(ctrl.atol, (int, float)):
            raise ValueError("per_sample=True takes rtol and atol as single numbers (one state tensor)")
        self.tab, self.ctrl, self.options = tab, ctrl, options
        self.rtol, self.atol = float(ctrl.rtol), float(ctrl.atol)
        assert tab.b_err is not None
        self.B, self.T = t_out.shape
        self.dev, self.dtype, self.y0, self.t_out = y0.device, y0.dtype, y0, t_out
        self.field = _Field(f, self.dtype, self.B, self.dev, options.compact > 0)
        B, dev = self.B, self.dev
        self.direction = (
            torch.sign(t_out[:, -1] - t_out[:, 0]) if self.T > 1 else torch.ones(B, dtype=torch.float64, device=dev)
        )
        self.control = PIController.pi(ctrl, tab.order, tab.error_order or tab.order)
        self.extras = LoopExtras() if extras is None else extras
        self.events = self.extras.events
        if self.extras.jump is not None and not self.extras.land_on_outputs:
            raise ValueError("jump needs land_on_outputs=True: the state can only change at an output time")
        self.lands = (tab.dense is None and tab.order > 3) or self.extras.land_on_outputs
        if self.events is not None and self.lands:
            raise ValueError(
                f"per-sample events need a method with an interpolant between steps ({tab.name!r} lands on the "
                "output times instead); use dopri5, tsit5, bosh3, heun or fehlberg2"
            )
        self.all_rows = torch.arange(B, device=dev)
        self.c = _coefficients(tuple(tab.c), dev)
        self.dense = None if tab.dense is None else _coefficients(tuple(tab.dense), dev)
        self.t_fwd = (t_out * self.direction.unsqueeze(1)).contiguous()  # every row increasing
        ex = self.extras
        if compile and (self.events is not None or ex.on_step is not None or ex.jump is not None):
            raise ValueError(
                "compile=True per sample does not support events, step callbacks or jumps yet; drop compile "
                "(the per-sample steps run eagerly), or solve with the shared step (per_sample=False), "
                "where events compile"
            )
        self.norm = SampleNorm(ctrl, y0)
        self.stops = SampleStops(ctrl, options.step_t, options.jump_t, t_out)
        if compile and not (self.norm.plain and not self.stops.any):
            raise ValueError(
                "compile=True per sample does not support Adaptive(weights, norm, step_t, jump_t) or "
                "PerSample(step_t, jump_t) yet; drop compile (eager steps support them) or these options"
            )
        self.compiled_key = per_sample_compiled.key(tab, f, y0, ctrl, self.lands, self.T) if compile else None

    def _start(self) -> None:
        """ys with y0 first, every row at its first time, its first step size and no counts yet."""
        B, T, dev, y0, ctrl = self.B, self.T, self.dev, self.y0, self.ctrl
        self.ys = torch.zeros((T + 1,) + tuple(y0.shape), dtype=self.dtype, device=dev)  # row T: scratch
        self.ys[0] = y0
        self.t = self.t_out[:, 0].clone()
        self.steps = torch.zeros(B, dtype=torch.int64, device=dev)
        self.accepted, self.rejected = self.steps.clone(), self.steps.clone()
        self.y: Tensor = y0
        self.k1: Optional[Tensor] = None
        if T == 1:
            return
        if self.extras.h0 is not None:
            h = self.extras.h0.to(torch.float64).abs()
        elif ctrl.first_step is None:
            t0_f = self.t  # past t0 where f jumps there
            if self.stops.has_jumps:
                t0_f = nudge(self.t, self.stops.at_jump(self.t, None), self.direction, self.dtype)
            self.k1 = self.field(t0_f, self.y, None)
            with torch.no_grad():
                h = _initial_step(
                    lambda tt, yy: self.field(tt, yy, None),
                    self.t,
                    y0.detach(),
                    self.k1.detach(),
                    self.tab.order,
                    self.rtol,
                    self.atol,
                    self.direction,
                    lambda r: self.norm(r, None),
                )
        else:
            h = torch.full((B,), float(ctrl.first_step), dtype=torch.float64, device=dev)
        self.h = self.control.clamp(self.direction * h)
        self.err_prev = torch.ones(B, dtype=torch.float64, device=dev)
        self.nxt = torch.ones(B, dtype=torch.int64, device=dev)
        if self.events is not None:
            self.g_prev = self.events.values(self.t, self.y.detach(), None)
            self.ev_hit = torch.zeros(B, dtype=torch.bool, device=dev)
            self.ev_t = torch.full((B,), float("nan"), dtype=torch.float64, device=dev)
            self.ev_comp = torch.full((B,), -1, dtype=torch.int64, device=dev)
            self.ev_y = torch.zeros_like(y0)

    def run(self) -> Tuple[Tensor, SampleCounts, int]:
        """(states [T, B, ...] with y0 first, per-sample counts, batched evaluations of f)."""
        self._start()
        n_active, self.attempts = (self.B if self.T > 1 else 0), 0
        while n_active > 0:
            compact = n_active <= self.options.compact * self.B and n_active < self.B
            if self.compiled_key is not None and not compact:
                n_active = self._compiled_step()
                continue
            a = self._attempt((self.nxt < self.T).nonzero().reshape(-1) if compact else None)
            if self.events is not None:
                self._events(a)
            self._control(a)
            n_active, several = self._read(a)
            self._write(a, several)
            self._commit(a)
        counts = SampleCounts(self.steps.cpu(), self.accepted.cpu(), self.rejected.cpu(), self.field.row_evals.cpu())
        if self.T > 1:
            self.extras.h_next = self.h
        if self.events is not None and self.T > 1:
            ex = self.extras
            ex.event_hit, ex.event_t, ex.event_y, ex.event_component = self.ev_hit, self.ev_t, self.ev_y, self.ev_comp
        return self.ys[: self.T], counts, self.field.calls

    def _compiled_step(self) -> int:
        """One attempted step of every row through the compiled `per_sample_compiled.step`
        (the same arithmetic as `_attempt`, `_control` and `_commit`), its host read, failures
        and outputs; returns the rows still running."""
        field = self.field
        args = (
            self.tab, field.f, self.ctrl, self.lands, self.y, self.k1, self.t, self.h, self.err_prev, self.nxt,
            self.steps, self.accepted, self.rejected, self.t_out, self.t_fwd, self.direction, self.c,
            self.dense, self.all_rows if field.with_rows else None,
        )  # fmt: skip
        n = per_sample_compiled.evaluations(self.tab, self.k1)
        state, info, val, slot, extra = per_sample_compiled.unpack(per_sample_compiled.run(self.compiled_key, *args))
        field.calls += n
        field.full_calls += n
        max_reached, n_under, n_over, n_active = info
        t1, h_try, n_reached, y1, ks, hks, underflow, over = extra
        if n_under or n_over:
            self._fail(bool(n_under), underflow if n_under else over, None, self.t, h_try)
        self.attempts += 1
        if val is not None and 0 < max_reached <= per_sample_compiled.OUTPUTS:
            rows = self.all_rows.repeat(per_sample_compiled.OUTPUTS)
            self.ys.index_put_((slot.reshape(-1), rows), val.reshape(-1, *self.y0.shape[1:]))
        elif max_reached:
            step = (self.t, t1, h_try, self.y, y1, list(ks), list(hks))
            f1 = ks[-1] if self.tab.fsal else None
            self._write_rows(max_reached, None, self.all_rows, self.nxt, n_reached, step, f1)
        self.t, self.h, self.y, self.k1, self.err_prev, self.nxt, self.steps, self.accepted, self.rejected = state
        return int(n_active)

    def _sub(self, x: Tensor, idx: Optional[Tensor]) -> Tensor:
        return x if idx is None else x.index_select(0, idx)

    def _f(self, idx: Optional[Tensor]) -> Callable[[Tensor, Tensor], Tensor]:
        return lambda tt, yy: self.field(tt, yy, idx)

    def _attempt(self, idx: Optional[Tensor]) -> _Attempt:
        """Every covered row's RK step (a finished row attempts a step of size 0: f at its final
        state, nothing changes), its error norm, acceptance and the outputs it passes."""
        tab, ctrl, T, sub = self.tab, self.ctrl, self.T, self._sub
        t_s, y_s, nxt_s = sub(self.t, idx), sub(self.y, idx), sub(self.nxt, idx)
        t_out_s, dir_s = sub(self.t_out, idx), sub(self.direction, idx)
        act = nxt_s < T
        h_s = torch.where(act, sub(self.h, idx), 0.0)
        if self.lands:
            target = t_out_s.gather(1, nxt_s.clamp(max=T - 1).unsqueeze(1)).squeeze(1)
            land = act & ((t_s + h_s - target) * dir_s > 0)
            h_try = torch.where(land, target - t_s, h_s)
        else:
            target, land, h_try = h_s, torch.zeros_like(act), h_s
        land_out = land  # landing on an output time
        stops, jump_end = self.stops, None
        if stops.any:  # a step that would pass the row's next stop (step_t, jump_t) ends on it
            h_try, target, land, land_out = stops.end_on_stops(act, t_s, h_try, target, land, dir_s, idx)
        stage_t = list((t_s.unsqueeze(1) + h_try.unsqueeze(1) * self.c).unbind(1))  # t + c_i h per row
        t1_f = None
        if stops.has_jumps:  # f on the step's side of a discontinuity
            jump_end = land & stops.at_jump(target, idx)
            after = act & stops.at_jump(t_s, idx)
            stage_t = nudge_stages(stage_t, tab.c, after, jump_end, dir_s, self.dtype)
            t1_f = nudge(torch.where(land, target, t_s + h_try), jump_end, -dir_s, self.dtype)
        fr = self._f(idx)
        k1_s = fr(stage_t[0], y_s) if self.k1 is None else sub(self.k1, idx)
        hy = _rows(h_try.to(self.dtype), y_s)
        inputs: Optional[List[Tensor]] = [] if self.extras.on_step is not None else None
        y1, ks, hks = _rk_step(tab, fr, y_s, k1_s, stage_t, hy, inputs)
        with torch.no_grad():
            err = _lincomb(None, [_nograd(k) for k in hks], tab.b_err)
            en = self.norm(err / (self.atol + self.rtol * torch.maximum(_nograd(y_s).abs(), _nograd(y1).abs())), idx)
        ok = en <= 1.0
        if ctrl.min_step > 0:  # a step of the smallest size is taken whatever its error
            ok = ok | ((h_try.abs() <= ctrl.min_step) & torch.isfinite(en))
        acc_s, rej_s = act & ok, act & ~ok
        if self.extras.on_step is not None:
            assert inputs is not None
            self.extras.on_step(stage_t, inputs, h_try, acc_s, idx)
        t1 = torch.where(land, target, t_s + h_try) if (self.lands or stops.any) else t_s + h_try
        # Outputs reached by this step: t_out[b, j] in (t_b, t1_b] with j >= nxt_b (rows sorted).
        upto = torch.searchsorted(sub(self.t_fwd, idx), (t1 * dir_s).unsqueeze(1), right=True).squeeze(1)
        rows = self.all_rows if idx is None else idx
        h_safe = torch.where(h_try == 0, 1.0, h_try)
        f1 = ks[-1] if tab.fsal else None
        return _Attempt(
            idx, rows, t_s, y_s, nxt_s, t_out_s, dir_s, act, h_s, land, target, h_try, k1_s, y1, ks, hks,
            en, ok, acc_s, rej_s, t1, f1, h_safe, upto, land_out=land_out, jump_end=jump_end,
            t1_f=t1 if t1_f is None else t1_f,
        )  # fmt: skip

    def _events(self, a: _Attempt) -> None:
        """A sign change of some row's event inside its accepted step: locate it, end the row there."""
        events, tab, idx, sub = self.events, self.tab, a.idx, self._sub
        assert events is not None
        g0, g1 = sub(self.g_prev, idx), events.values(a.t1, a.y1.detach(), idx)
        cross = events.crossings(g0, g1) & a.acc.unsqueeze(1)
        if bool(cross.any()):
            if a.f1 is None and tab.dense is None:
                a.f1 = self._f(idx)(a.t1 if a.t1_f is None else a.t1_f, a.y1)  # the Hermite interpolant needs f(t1, y1)
            dense = _event_dense(tab, a.y, a.y1, a.ks, a.hks, a.f1, a.t, a.t1, a.h_try)
            with torch.no_grad():  # t_e carries its gradient through SampleEventTime only
                hit, t_e, comp = events.locate(cross, g0, g1, a.t, a.t1, dense, idx)
            t_fwd = sub(self.t_fwd, idx)
            hit = hit & (t_e * a.direction <= t_fwd[:, -1])  # a root past the row's last time is outside its solve
            # Outputs strictly before the event: t_out[b, j] < t_e (in the direction of the row).
            before = torch.searchsorted(t_fwd, (t_e * a.direction).unsqueeze(1), right=False).squeeze(1)
            a.upto, a.hit = torch.where(hit, before, a.upto), hit
            y_e = _output(tab, a.y, a.y1, a.ks, a.hks, a.f1, (t_e - a.t) / a.h_safe, a.h_try, t_e == a.t1, False)
            self.ev_y = _put(self.ev_y, torch.where(_rows(hit, y_e), y_e, sub(self.ev_y, idx)), idx)
            self.ev_t = _put(self.ev_t, torch.where(hit, t_e, sub(self.ev_t, idx)), idx)
            self.ev_comp = _put(self.ev_comp, torch.where(hit, comp, sub(self.ev_comp, idx)), idx)
            self.ev_hit = _put(self.ev_hit, sub(self.ev_hit, idx) | hit, idx)
        self.g_prev = _put(self.g_prev, torch.where(a.acc.unsqueeze(1), g1, g0), idx)

    def _control(self, a: _Attempt) -> None:
        """The PI controller of loop.integrate_adaptive, every row at once; the outputs reached,
        the next output index and the failures (underflow, max_steps)."""
        ctrl, T, en = self.ctrl, self.T, a.en
        a.n_reached = torch.where(a.acc, (a.upto - a.nxt).clamp_min(0), 0)
        prev = self._sub(self.err_prev, a.idx)
        factor = self.control.factors(en, a.ok, prev)
        stuck = a.t + a.h_try * factor == a.t
        a.underflow = a.rej & ((a.h_try.abs() <= ctrl.min_step) | stuck if ctrl.min_step > 0 else stuck)
        base = torch.where(a.land & (en <= 1.0), a.h, a.h_try) if (self.lands or self.stops.any) else a.h_try
        a.h_next = torch.where(a.act, self.control.clamp(base * factor), self._sub(self.h, a.idx))
        a.steps = self._sub(self.steps, a.idx) + a.act.to(torch.int64)
        a.nxt_new = a.nxt + a.n_reached if a.hit is None else torch.where(a.hit, T, a.nxt + a.n_reached)
        land_out = a.land if a.land_out is None else a.land_out
        a.jumped = land_out & a.acc & (a.nxt_new < T) if self.extras.jump is not None else None
        self.attempts += 1  # no row has made more attempts than the loop
        a.over = (
            a.act & (a.steps >= ctrl.max_steps) & (a.nxt_new < T)
            if self.attempts >= ctrl.max_steps
            else torch.zeros_like(a.act)
        )
        a.err_prev = torch.where(a.acc, en.clamp_min(1e-4), prev)

    def _read(self, a: _Attempt) -> Tuple[int, int]:
        """The step's one host read: outputs per row at most, failures, rows still running,
        rows that jump. Raises `SolverError` for a step-size underflow or max_steps; returns
        (rows still running, most outputs reached by a row)."""
        assert a.n_reached is not None and a.underflow is not None and a.over is not None and a.nxt_new is not None
        parts = [a.n_reached.max(), a.underflow.sum(), a.over.sum(), (a.nxt_new < self.T).sum()]
        info = torch.stack(parts + ([a.jumped.sum()] if a.jumped is not None else [])).tolist()
        max_reached, n_under, n_over, n_active = info[:4]
        if a.jumped is not None and not info[4]:
            a.jumped = None  # no row lands on an interior output this step
        if n_under or n_over:
            self._fail(bool(n_under), a.underflow if n_under else a.over, a.idx, a.t, a.h_try)
        return int(n_active), int(max_reached)

    def _fail(self, underflow: bool, bad: Tensor, idx: Optional[Tensor], t: Tensor, h_try: Tensor) -> None:
        """The `SolverError` of the first row in ``bad``: a step-size underflow or max_steps."""
        i = int(bad.nonzero()[0, 0])
        b = i if idx is None else int(idx[i])
        what = "step size underflow" if underflow else f"reached max_steps={self.ctrl.max_steps}"
        hint = (
            "the problem may be stiff or singular there, or its state became non-finite; loosen rtol/atol, "
            "lower min_step or check the vector field"
            if underflow
            else "raise max_steps, loosen rtol/atol, or check whether this sample's ODE is stiff"
        )
        raise SolverError(f"{what} in sample {b}", float(t[i]), float(h_try[i]), hint)

    def _write(self, a: _Attempt, max_reached: int) -> None:
        """Every output the step passed, from the row's interpolant (or its end when it lands)."""
        if max_reached:
            assert a.n_reached is not None
            step = (a.t, a.t1, a.h_try, a.y, a.y1, a.ks, a.hks)
            a.f1 = self._write_rows(max_reached, a.idx, a.rows, a.nxt, a.n_reached, step, a.f1, a.t1_f)

    def _write_rows(
        self, max_reached: int, idx: Optional[Tensor], rows: Tensor, nxt: Tensor, n_reached: Tensor, step, f1, t1_f=None
    ) -> Optional[Tensor]:
        """Writes the outputs t_out[b, nxt_b .. nxt_b + n_reached_b) of the rows ``idx`` from the
        step ``step`` = (t, t1, h_try, y, y1, ks, hks); returns f1 (evaluated here for Hermite)."""
        tab, T = self.tab, self.T
        t, t1, h_try, y, y1, ks, hks = step
        t_out = self._sub(self.t_out, idx)
        h_safe = torch.where(h_try == 0, 1.0, h_try)
        if f1 is None and tab.dense is None and not self.lands:
            f1 = self._f(idx)(t1 if t1_f is None else t1_f, y1)  # Hermite output needs f(t1, y1)
        if max_reached == 1:  # (the common case) one output per row at most
            tj = t_out.gather(1, nxt.clamp(max=T - 1).unsqueeze(1)).squeeze(1)
            val = _output(tab, y, y1, ks, hks, f1, (tj - t) / h_safe, h_try, tj == t1, self.lands)
            j = torch.where(n_reached > 0, nxt.clamp(max=T - 1), T)
            self.ys.index_put_((j, rows), val)
            return f1
        s_idx = torch.arange(max_reached, device=self.dev).unsqueeze(1)  # several outputs: all at once
        js = (nxt.unsqueeze(0) + s_idx).clamp(max=T - 1)  # [S, n]
        tj = t_out.gather(1, js.T).T
        vals = _outputs(tab, y, y1, ks, hks, f1, (tj - t) / h_safe, h_try, tj == t1, self.lands)
        # Slots past a row's last reached output write to the scratch row T (never read).
        js = torch.where(s_idx < n_reached.unsqueeze(0), js, T)
        self.ys.index_put_((js.reshape(-1), rows.repeat(max_reached)), vals.reshape(-1, *self.y0.shape[1:]))
        return f1

    def _commit(self, a: _Attempt) -> None:
        """The covered rows' new time, state, FSAL stage, step, error memory, next output and counts."""
        assert a.h_next is not None and a.err_prev is not None and a.nxt_new is not None and a.steps is not None
        keep, idx = _rows(a.acc, a.y), a.idx
        t_new, y_new = torch.where(a.acc, a.t1, a.t), torch.where(keep, a.y1, a.y)
        k_new = torch.where(keep, a.ks[-1], a.k1) if self.tab.fsal else None
        if a.jumped is not None:
            assert self.extras.jump is not None
            y_new = self.extras.jump(a.nxt_new - 1, a.jumped, y_new, idx)
            if k_new is not None:  # f anew after the jump, where the state changed
                k_new = torch.where(_rows(a.jumped, y_new), self._f(idx)(t_new, y_new), k_new)
        if self.stops.any:
            self.stops.passed(a.t1, a.acc, idx)
            if a.jump_end is not None and k_new is not None and bool((a.jump_end & a.acc).any()):
                past = a.jump_end & a.acc  # f anew just past the discontinuity
                k_new = torch.where(
                    _rows(past, y_new), self._f(idx)(nudge(t_new, past, a.direction, self.dtype), y_new), k_new
                )
        acc, rej = a.acc.to(torch.int64), a.rej.to(torch.int64)
        if idx is None:
            self.t, self.h, self.y, self.k1 = t_new, a.h_next, y_new, k_new
            self.err_prev, self.nxt, self.steps = a.err_prev, a.nxt_new, a.steps
            self.accepted, self.rejected = self.accepted + acc, self.rejected + rej
            return
        self.t, self.h = self.t.index_copy(0, idx, t_new), self.h.index_copy(0, idx, a.h_next)
        self.y = self.y.index_copy(0, idx, y_new)
        self.k1 = None if (self.k1 is None or k_new is None) else self.k1.index_copy(0, idx, k_new)
        self.err_prev, self.nxt = self.err_prev.index_copy(0, idx, a.err_prev), self.nxt.index_copy(0, idx, a.nxt_new)
        self.steps = self.steps.index_copy(0, idx, a.steps)
        self.accepted, self.rejected = self.accepted.index_add(0, idx, acc), self.rejected.index_add(0, idx, rej)


def integrate_per_sample(
    tab: ButcherTableau,
    f: Callable,
    y0: Tensor,
    t_out: Tensor,
    ctrl: Adaptive,
    options: Optional[PerSample] = None,
    extras: Optional[LoopExtras] = None,
    compile: bool = False,
) -> Tuple[Tensor, SampleCounts, int]:
    """Adaptive solve of every row of y0 [B, ...] through its own output times t_out [B, T]
    (float64, each row strictly monotone, either direction); f(t [B], y) or, with
    ``options.compact``, f(t, y, rows). Returns (states [T, B, ...] with
    y0 first, per-sample counts, batched evaluations of f). Differentiable by autograd
    through the steps (the step sizes carry no gradient, as in the shared-step loop).
    ``extras``: events, a given first step, landing and jumps at the outputs (`LoopExtras`).
    ``compile``: every attempted step of all rows as one compiled call (`per_sample_compiled`).
    The loop's steps are `PerSampleLoop`."""
    return PerSampleLoop(tab, f, y0, t_out, ctrl, options or PerSample(), extras, compile).run()
