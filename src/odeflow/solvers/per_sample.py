"""Per-sample adaptive stepping: every row of a batch takes its own steps (an odeflow extension).

The leading dimension of the state is the batch. Each sample b has its own time t_b, step h_b,
previous error err_prev_b, next output index and status; one attempted step is one batched
evaluation of every stage, and the decisions are masks instead of scalars:

    err_b   = sqrt(mean_i (e_bi / (atol + rtol max(|y_bi|, |y1_bi|)))^2)   (Hairer I, eq. 4.11, per row)
    accept_b <=> err_b <= 1   (or |h_b| <= min_step with a finite err_b)
    h_b'    = clamp(h_b clip(safety err_b^(-alpha/q) err_prev_b^(beta/q), min_factor, max_factor))

with the same PI controller (Hairer & Wanner II §IV.2) and the same initial step (Hairer I
§II.4) as `loop.integrate_adaptive`, so each row takes the steps it would take alone. A finished
row keeps its state and time (its evaluations are masked out), so it never changes another
row; with ``compact`` the vector field sees only the active rows once few are left. The loop
reads one small tensor on the host per attempted step (continue? which outputs? failures?).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import torch
from torch import Tensor

from .errors import SolverError
from .per_sample_events import SampleEvents
from .stepping import Adaptive
from .tableau import ButcherTableau

Func = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class PerSample:
    """Options of per-sample stepping (``solve(..., per_sample=PerSample(...))``).

    compact: once at most this fraction of the rows is still running, the vector field is
    evaluated on the running rows only. With compact > 0, f is called as f(t, y, rows): rows
    holds the batch indices of y's rows (per-sample parameters are then mu[rows]); f must treat
    rows independently. 0 (the default) always evaluates every row, as f(t, y).
    """

    compact: float = 0.0

    def __post_init__(self) -> None:
        if not (0.0 <= self.compact <= 1.0):
            raise ValueError(f"PerSample(compact={self.compact!r}): give a fraction of the rows in [0, 1]")


@dataclass
class SampleCounts:
    """Per-sample statistics, each a [B] int64 tensor: attempted steps, accepted and rejected
    steps, and the evaluations of f that included the row (its share of the work)."""

    steps: Tensor
    accepted: Tensor
    rejected: Tensor
    nfe: Tensor


@dataclass
class LoopExtras:
    """What the plain per-sample loop does not need: inputs for events and the adjoint, and
    what the loop hands back to them.

    events: terminal events per sample (`per_sample_events.SampleEvents`); h0: each row's first
    step size (magnitude, [B]; else Hairer's estimate); land_on_outputs: steps end exactly on
    the output times; jump(j, mask, y, rows) -> y replaces the state of the rows ``mask`` that
    landed on their interior output j (needs land_on_outputs); on_step(stage_t, stage_y, h,
    accepted, rows) sees every attempted step's stage times and stage states.
    Filled in by the loop: h_next (the step each row would take next), event_hit, event_t,
    event_y (with graph), event_component ([B] each)."""

    events: Optional[SampleEvents] = None
    h0: Optional[Tensor] = None
    land_on_outputs: bool = False
    jump: Optional[Callable[[Tensor, Tensor, Tensor, Optional[Tensor]], Tensor]] = None
    on_step: Optional[Callable[..., None]] = None
    h_next: Optional[Tensor] = None
    event_hit: Optional[Tensor] = None
    event_t: Optional[Tensor] = None
    event_y: Optional[Tensor] = None
    event_component: Optional[Tensor] = None


def _rows(x: Tensor, like: Tensor) -> Tensor:
    """A [B] tensor shaped [B, 1, ..., 1] to broadcast against ``like`` [B, ...]."""
    return x.reshape(-1, *([1] * (like.dim() - 1)))


def _rms(ratio: Tensor) -> Tensor:
    """Root mean square of each row, in float64: [B, ...] -> [B]."""
    r = ratio.reshape(ratio.shape[0], -1).to(torch.float64)
    return (r * r).mean(dim=1).sqrt()


class _Field:
    """f(t [B], y [B, ...]) on all rows, or on the rows ``idx`` only; counts evaluations."""

    def __init__(self, f: Callable, dtype: torch.dtype, batch: int, device: torch.device, with_rows: bool) -> None:
        self.f, self.dtype, self.with_rows = f, dtype, with_rows
        self.calls = 0
        self.row_evals = torch.zeros(batch, dtype=torch.int64, device=device)
        self.all_rows = torch.arange(batch, device=device)

    def __call__(self, t: Tensor, y: Tensor, idx: Optional[Tensor]) -> Tensor:
        self.calls += 1
        if idx is None:
            self.row_evals += 1
        else:
            self.row_evals.index_add_(0, idx, torch.ones_like(idx))
        if self.with_rows:
            out = self.f(t.to(self.dtype), y, self.all_rows if idx is None else idx)
        else:
            out = self.f(t.to(self.dtype), y)
        if not isinstance(out, Tensor) or out.shape != y.shape:
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(
                f"func(t, y) returned {got} for a state of shape {tuple(y.shape)}; with per_sample=True "
                "t is a [batch] tensor (one time per row) and dy/dt must have the shape of y"
            )
        return out


def _initial_step(
    f: Callable[[Tensor, Tensor], Tensor],
    t0: Tensor,
    y0: Tensor,
    f0: Tensor,
    order: int,
    rtol: float,
    atol: float,
    direction: Tensor,
) -> Tensor:
    """Hairer's starting step for every row (as `stepping.initial_step`); one extra f call."""
    scale = atol + rtol * y0.abs()
    d0, d1 = _rms(y0 / scale), _rms(f0 / scale)
    small = (d0 < 1e-5) | (d1 < 1e-5) | ~torch.isfinite(d1)
    h0 = torch.where(small, torch.full_like(d0, 1e-6), 0.01 * d0 / torch.where(small, torch.ones_like(d1), d1))
    y1 = y0 + _rows((direction * h0).to(y0.dtype), y0) * f0
    f1 = f(t0 + direction * h0, y1)
    d2 = _rms((f1 - f0) / scale) / h0
    big = torch.maximum(d1, d2)
    flat = (big <= 1e-15) | ~torch.isfinite(d2)
    h1 = torch.where(
        flat,
        torch.clamp(h0 * 1e-3, min=1e-6),
        (0.01 / torch.where(flat, torch.ones_like(big), big)) ** (1.0 / (order + 1)),
    )
    return torch.minimum(100 * h0, h1)


@functools.lru_cache(maxsize=32)
def _coefficients(values: Tuple, device: torch.device) -> Tensor:
    """A tableau's numbers as a float64 tensor, made once per device."""
    return torch.tensor(values, dtype=torch.float64, device=device)


def _dense_weights(tab: ButcherTableau, theta: Tensor) -> Tensor:
    """b_i(theta) of the continuous extension for every row: [stages, B] (float64)."""
    assert tab.dense is not None
    dense = _coefficients(tuple(tab.dense), theta.device)
    powers = [theta]
    for _ in range(dense.shape[1] - 1):
        powers.append(powers[-1] * theta)
    return dense @ torch.stack(powers)


def _output(
    tab: ButcherTableau,
    y: Tensor,
    y1: Tensor,
    ks: List[Tensor],
    hks: List[Tensor],
    f1: Optional[Tensor],
    theta: Tensor,
    h: Tensor,
    at_end: Tensor,
    lands: bool,
) -> Tensor:
    """The state at t + theta h of every row's step: its continuous extension
    y + sum_i b_i(theta) (h k_i), cubic Hermite (f0 = ks[0], f1) without one, y1 itself where
    the output time is the step's end."""
    if lands:
        return y1
    hy = _rows(h.to(y.dtype), y)
    if tab.dense is not None:
        w = _dense_weights(tab, theta).to(y.dtype)
        val = y
        for i in range(w.shape[0]):
            val = torch.addcmul(val, _rows(w[i], y), hks[i])
    else:
        assert f1 is not None
        th = _rows(theta.to(y.dtype), y)
        t2, t3 = th * th, th * th * th
        val = (2 * t3 - 3 * t2 + 1) * y + (-2 * t3 + 3 * t2) * y1 + hy * ((t3 - 2 * t2 + th) * ks[0] + (t3 - t2) * f1)
    return torch.where(_rows(at_end, y), y1, val)


def _outputs(
    tab: ButcherTableau,
    y: Tensor,
    y1: Tensor,
    ks: List[Tensor],
    hks: List[Tensor],
    f1: Optional[Tensor],
    theta: Tensor,
    h: Tensor,
    at_end: Tensor,
    lands: bool,
) -> Tensor:
    """`_output` at several points of every row's step at once: theta and at_end [S, B] ->
    states [S, B, ...]."""
    n_out = theta.shape[0]
    if lands:
        return y1.unsqueeze(0).expand(n_out, *y1.shape)
    col = lambda x: x.reshape(*x.shape, *([1] * (y.dim() - 1)))  # noqa: E731  ([S, B] -> [S, B, 1, ...])
    if tab.dense is not None:
        dense = _coefficients(tuple(tab.dense), theta.device)
        powers = [theta]
        for _ in range(dense.shape[1] - 1):
            powers.append(powers[-1] * theta)
        w = torch.einsum("ip,psb->isb", dense, torch.stack(powers)).to(y.dtype)  # [stages, S, B]
        val = y.unsqueeze(0)
        for i in range(w.shape[0]):
            val = torch.addcmul(val, col(w[i]), hks[i])
    else:
        assert f1 is not None
        hy = _rows(h.to(y.dtype), y)
        th = col(theta.to(y.dtype))
        t2, t3 = th * th, th * th * th
        val = (2 * t3 - 3 * t2 + 1) * y + (-2 * t3 + 3 * t2) * y1 + hy * ((t3 - 2 * t2 + th) * ks[0] + (t3 - t2) * f1)
    return torch.where(col(at_end), y1.unsqueeze(0), val)


def integrate_per_sample(
    tab: ButcherTableau,
    f: Callable,
    y0: Tensor,
    t_out: Tensor,
    ctrl: Adaptive,
    options: PerSample = PerSample(),
    extras: Optional[LoopExtras] = None,
) -> Tuple[Tensor, SampleCounts, int]:
    """Adaptive solve of every row of y0 [B, ...] through its own output times t_out [B, T]
    (float64, each row strictly monotone, either direction); f(t [B], y) or, with
    ``options.compact``, f(t, y, rows). Returns (states [T, B, ...] with
    y0 first, per-sample counts, batched evaluations of f). Differentiable by autograd
    through the steps (the step sizes carry no gradient, as in the shared-step loop).
    ``extras``: events, a given first step, landing and jumps at the outputs (`LoopExtras`)."""
    if not tab.adaptive:
        raise ValueError(f"per_sample=True needs an adaptive method; {tab.name!r} has no error estimate")
    if not isinstance(ctrl.rtol, (int, float)) or not isinstance(ctrl.atol, (int, float)):
        raise ValueError("per_sample=True takes rtol and atol as single numbers (one state tensor)")
    rtol, atol = float(ctrl.rtol), float(ctrl.atol)
    b_err = tab.b_err
    assert b_err is not None
    B, T = t_out.shape
    dev, dtype = y0.device, y0.dtype
    field = _Field(f, dtype, B, dev, options.compact > 0)
    direction = torch.sign(t_out[:, -1] - t_out[:, 0]) if T > 1 else torch.ones(B, dtype=torch.float64, device=dev)
    q = min(tab.order, tab.error_order or tab.order) + 1
    extras = LoopExtras() if extras is None else extras
    events = extras.events
    if extras.jump is not None and not extras.land_on_outputs:
        raise ValueError("jump needs land_on_outputs=True: the state can only change at an output time")
    lands = (tab.dense is None and tab.order > 3) or extras.land_on_outputs
    if events is not None and lands:
        raise ValueError(
            f"per-sample events need a method with an interpolant between steps ({tab.name!r} lands on the "
            "output times instead); use dopri5, tsit5, bosh3, heun or fehlberg2"
        )
    rows = torch.arange(B, device=dev)
    c = _coefficients(tuple(tab.c), dev)

    ys = torch.zeros((T + 1,) + tuple(y0.shape), dtype=dtype, device=dev)  # row T: scratch
    ys[0] = y0
    t = t_out[:, 0].clone()
    steps = torch.zeros(B, dtype=torch.int64, device=dev)
    accepted, rejected = steps.clone(), steps.clone()
    y, k1 = y0, None
    if T == 1:
        return ys[:T], SampleCounts(steps.cpu(), accepted.cpu(), rejected.cpu(), field.row_evals.cpu()), 0
    if extras.h0 is not None:
        h = extras.h0.to(torch.float64).abs()
    elif ctrl.first_step is None:
        k1 = field(t, y, None)
        with torch.no_grad():
            h = _initial_step(
                lambda tt, yy: field(tt, yy, None), t, y.detach(), k1.detach(), tab.order, rtol, atol, direction
            )
    else:
        h = torch.full((B,), float(ctrl.first_step), dtype=torch.float64, device=dev)
    h = _clamp(direction * h, ctrl)
    err_prev = torch.ones(B, dtype=torch.float64, device=dev)
    nxt = torch.ones(B, dtype=torch.int64, device=dev)
    t_fwd = (t_out * direction.unsqueeze(1)).contiguous()  # every row increasing
    if events is not None:
        g_prev = events.values(t, y.detach(), None)
        ev_hit = torch.zeros(B, dtype=torch.bool, device=dev)
        ev_t = torch.full((B,), float("nan"), dtype=torch.float64, device=dev)
        ev_comp = torch.full((B,), -1, dtype=torch.int64, device=dev)
        ev_y = torch.zeros_like(y0)
    n_active, attempts = B, 0
    while n_active > 0:
        idx = (nxt < T).nonzero().reshape(-1) if n_active <= options.compact * B and n_active < B else None
        r_rows = rows if idx is None else idx

        def sub(x: Tensor, idx: Optional[Tensor] = idx) -> Tensor:
            return x if idx is None else x.index_select(0, idx)

        def fr(tt: Tensor, yy: Tensor, idx: Optional[Tensor] = idx) -> Tensor:
            return field(tt, yy, idx)

        t_s, y_s, nxt_s, t_out_s, dir_s = sub(t), sub(y), sub(nxt), sub(t_out), sub(direction)
        act = nxt_s < T
        # A finished row attempts a step of size 0: f at its final state, nothing changes.
        h_s = torch.where(act, sub(h), torch.zeros_like(t_s))
        if lands:
            target = t_out_s.gather(1, nxt_s.clamp(max=T - 1).unsqueeze(1)).squeeze(1)
            land = act & ((t_s + h_s - target) * dir_s > 0)
            h_try = torch.where(land, target - t_s, h_s)
        else:
            target, land, h_try = h_s, torch.zeros_like(act), h_s
        stage_t = list((t_s.unsqueeze(1) + h_try.unsqueeze(1) * c).unbind(1))  # t + c_i h per row
        k1_s = fr(stage_t[0], y_s) if k1 is None else sub(k1)
        hy = _rows(h_try.to(dtype), y_s)
        inputs: Optional[List[Tensor]] = [] if extras.on_step is not None else None
        y1, ks, hks = _rk_step(tab, fr, y_s, k1_s, stage_t, hy, inputs)
        with torch.no_grad():
            err = _lincomb(None, [k.detach() for k in hks], b_err)
            en = _rms(err / (atol + rtol * torch.maximum(y_s.detach().abs(), y1.detach().abs())))
        finite = torch.isfinite(en)
        ok = en <= 1.0
        if ctrl.min_step > 0:  # a step of the smallest size is taken whatever its error
            ok = ok | ((h_try.abs() <= ctrl.min_step) & finite)
        acc_s, rej_s = act & ok, act & ~ok
        if extras.on_step is not None:
            assert inputs is not None
            extras.on_step(stage_t, inputs, h_try, acc_s, idx)
        t1 = torch.where(land, target, t_s + h_try) if lands else t_s + h_try
        f1 = ks[-1] if tab.fsal else None
        h_safe = torch.where(h_try == 0, torch.ones_like(h_try), h_try)
        # Outputs reached by this step: t_out[b, j] in (t_b, t1_b] with j >= nxt_b (rows sorted).
        upto = torch.searchsorted(sub(t_fwd), (t1 * dir_s).unsqueeze(1), right=True).squeeze(1)
        hit: Optional[Tensor] = None
        if events is not None:
            g0, g1 = sub(g_prev), events.values(t1, y1.detach(), idx)
            cross = events.crossings(g0, g1) & acc_s.unsqueeze(1)
            if bool(cross.any()):  # an event inside some row's step: locate it, end the row there
                if f1 is None and tab.dense is None:
                    f1 = fr(t1, y1)  # the Hermite interpolant needs f(t1, y1)
                dense = _event_dense(tab, y_s, y1, ks, hks, f1, t_s, t1, h_try)
                with torch.no_grad():  # t_e carries its gradient through SampleEventTime only
                    hit, t_e, comp = events.locate(cross, g0, g1, t_s, t1, dense, idx)
                # Outputs strictly before the event: t_out[b, j] < t_e (in the direction of the row).
                before = torch.searchsorted(sub(t_fwd), (t_e * dir_s).unsqueeze(1), right=False).squeeze(1)
                upto = torch.where(hit, before, upto)
                y_e = _output(tab, y_s, y1, ks, hks, f1, (t_e - t_s) / h_safe, h_try, t_e == t1, False)
                ev_y = _put(ev_y, torch.where(_rows(hit, y_e), y_e, sub(ev_y)), idx)
                ev_t = _put(ev_t, torch.where(hit, t_e, sub(ev_t)), idx)
                ev_comp = _put(ev_comp, torch.where(hit, comp, sub(ev_comp)), idx)
                ev_hit = _put(ev_hit, sub(ev_hit) | hit, idx)
            g_prev = _put(g_prev, torch.where(acc_s.unsqueeze(1), g1, g0), idx)
        n_reached = torch.where(acc_s, (upto - nxt_s).clamp_min(0), torch.zeros_like(nxt_s))
        # The PI controller of loop.integrate_adaptive, every row at once.
        prev = sub(err_prev)
        safe = torch.where(finite, en, torch.zeros_like(en)).clamp_min(1e-300)
        grow = ctrl.safety * safe ** (-ctrl.alpha / q) * prev ** (ctrl.beta / q)
        grow = torch.where(en == 0, torch.full_like(grow, ctrl.max_factor), grow)
        grow = grow.clamp(ctrl.min_factor, ctrl.max_factor)
        shrink = (ctrl.safety * safe ** (-1.0 / q)).clamp(min=ctrl.min_factor)
        shrink = torch.where(finite, shrink, torch.full_like(en, ctrl.min_factor)).clamp(max=1.0)
        factor = torch.where(ok, grow, shrink)
        stuck = t_s + h_try * factor == t_s
        underflow = rej_s & ((h_try.abs() <= ctrl.min_step) | stuck if ctrl.min_step > 0 else stuck)
        base = torch.where(land & (en <= 1.0), h_s, h_try) if lands else h_try
        h_next = torch.where(act, _clamp(base * factor, ctrl), sub(h))
        steps_s = sub(steps) + act.to(torch.int64)
        nxt_new = nxt_s + n_reached if hit is None else torch.where(hit, T, nxt_s + n_reached)
        jumped = land & acc_s & (nxt_new < T) if extras.jump is not None else None
        attempts += 1  # no row has made more attempts than the loop
        over = (
            act & (steps_s >= ctrl.max_steps) & (nxt_new < T) if attempts >= ctrl.max_steps else torch.zeros_like(act)
        )
        # The step's one host read: outputs per row at most, failures, rows still running.
        parts = [n_reached.max(), underflow.sum(), over.sum(), (nxt_new < T).sum()]
        info = torch.stack(parts + ([jumped.sum()] if jumped is not None else [])).tolist()
        max_reached, n_under, n_over, n_active = info[:4]
        if n_under or n_over:
            bad = underflow if n_under else over
            i = int(bad.nonzero()[0, 0])
            b = i if idx is None else int(idx[i])
            what = "step size underflow" if n_under else f"reached max_steps={ctrl.max_steps}"
            hint = (
                "the problem may be stiff or singular there, or its state became non-finite; loosen rtol/atol, "
                "lower min_step or check the vector field"
                if n_under
                else "raise max_steps, loosen rtol/atol, or check whether this sample's ODE is stiff"
            )
            raise SolverError(f"{what} in sample {b}", float(t_s[i]), float(h_try[i]), hint)
        if max_reached and f1 is None and tab.dense is None and not lands:
            f1 = fr(t1, y1)  # Hermite output needs f(t1, y1)
        if max_reached == 1:  # (the common case) one output per row at most
            tj = t_out_s.gather(1, nxt_s.clamp(max=T - 1).unsqueeze(1)).squeeze(1)
            val = _output(tab, y_s, y1, ks, hks, f1, (tj - t_s) / h_safe, h_try, tj == t1, lands)
            j = torch.where(n_reached > 0, nxt_s.clamp(max=T - 1), torch.full_like(nxt_s, T))
            ys.index_put_((j, r_rows), val)
        elif max_reached:  # several outputs: all of them, all rows at once
            s_idx = torch.arange(max_reached, device=dev).unsqueeze(1)
            j = (nxt_s.unsqueeze(0) + s_idx).clamp(max=T - 1)  # [S, n]
            tj = t_out_s.gather(1, j.T).T
            vals = _outputs(tab, y_s, y1, ks, hks, f1, (tj - t_s) / h_safe, h_try, tj == t1, lands)
            # Slots past a row's last reached output write to the scratch row T (never read).
            j = torch.where(s_idx < n_reached.unsqueeze(0), j, torch.full_like(j, T))
            ys.index_put_((j.reshape(-1), r_rows.repeat(max_reached)), vals.reshape(-1, *y0.shape[1:]))
        keep = _rows(acc_s, y_s)
        t_new, y_new = torch.where(acc_s, t1, t_s), torch.where(keep, y1, y_s)
        k_new = torch.where(keep, ks[-1], k1_s) if tab.fsal else None
        if jumped is not None and info[4]:
            assert extras.jump is not None
            y_new = extras.jump(nxt_new - 1, jumped, y_new, idx)
            if k_new is not None:  # f anew after the jump, where the state changed
                k_new = torch.where(_rows(jumped, y_new), fr(t_new, y_new), k_new)
        prev_new = torch.where(acc_s, en.clamp_min(1e-4), prev)
        if idx is None:
            t, h, y, k1, err_prev, nxt, steps = t_new, h_next, y_new, k_new, prev_new, nxt_new, steps_s
            accepted, rejected = accepted + acc_s.to(torch.int64), rejected + rej_s.to(torch.int64)
        else:
            t, h, y = t.index_copy(0, idx, t_new), h.index_copy(0, idx, h_next), y.index_copy(0, idx, y_new)
            k1 = None if (k1 is None or k_new is None) else k1.index_copy(0, idx, k_new)
            err_prev, nxt = err_prev.index_copy(0, idx, prev_new), nxt.index_copy(0, idx, nxt_new)
            steps = steps.index_copy(0, idx, steps_s)
            accepted = accepted.index_add(0, idx, acc_s.to(torch.int64))
            rejected = rejected.index_add(0, idx, rej_s.to(torch.int64))
    counts = SampleCounts(steps.cpu(), accepted.cpu(), rejected.cpu(), field.row_evals.cpu())
    extras.h_next = h
    if events is not None:
        extras.event_hit, extras.event_t, extras.event_y, extras.event_component = ev_hit, ev_t, ev_y, ev_comp
    return ys[:T], counts, field.calls


def _event_dense(
    tab: ButcherTableau,
    y: Tensor,
    y1: Tensor,
    ks: List[Tensor],
    hks: List[Tensor],
    f1: Optional[Tensor],
    t: Tensor,
    t1: Tensor,
    h: Tensor,
) -> Callable[[Tensor], Tensor]:
    """c [n] -> every row's state at its time c inside its step (no graph), for the event search."""
    y, y1, f1 = y.detach(), y1.detach(), None if f1 is None else f1.detach()
    ks, hks = [k.detach() for k in ks], [k.detach() for k in hks]
    h_safe = torch.where(h == 0, torch.ones_like(h), h)

    def dense(c: Tensor) -> Tensor:
        with torch.no_grad():
            return _output(tab, y, y1, ks, hks, f1, (c - t) / h_safe, h, c == t1, False)

    return dense


def _put(full: Tensor, part: Tensor, idx: Optional[Tensor]) -> Tensor:
    """``full`` with the rows ``idx`` replaced by ``part`` (all rows when idx is None)."""
    return part if idx is None else full.index_copy(0, idx, part)


def _lincomb(y: Optional[Tensor], hks: List[Tensor], coeffs) -> Tensor:
    """y + sum_j coeffs[j] hks[j] (y None: 0), one fused add per nonzero term."""
    terms = [(k, c) for k, c in zip(hks, coeffs) if c != 0.0]
    if y is None:
        (k, c), terms = terms[0], terms[1:]
        acc = k * c
    else:
        acc = y
    for k, c in terms:
        acc = torch.add(acc, k, alpha=c)
    return acc


def _rk_step(
    tab: ButcherTableau,
    f: Func,
    y: Tensor,
    k1: Tensor,
    stage_t: List[Tensor],
    hy: Tensor,
    inputs: Optional[List[Tensor]] = None,
) -> Tuple[Tensor, List[Tensor], List[Tensor]]:
    """One explicit RK step with a step per row (hy [B, 1, ...]): k_i = f(t + c_i h, y + sum_j a_ij
    (h k_j)); returns (y1, the k_i, the h k_i). Each h k_j is formed once, so a stage costs one
    product and one fused add per coefficient, as with a scalar step. ``inputs``, if given,
    receives every stage's state (y first)."""
    ks, hks = [k1], [hy * k1]
    if inputs is not None:
        inputs.append(y)
    y1: Optional[Tensor] = None
    for i in range(1, tab.stages):
        yi = _lincomb(y, hks, tab.a[i]) if any(tab.a[i]) else y
        if tab.fsal and i == tab.stages - 1:
            y1 = yi
        if inputs is not None:
            inputs.append(yi)
        ks.append(f(stage_t[i], yi))
        hks.append(hy * ks[-1])
    if y1 is None:
        y1 = _lincomb(y, hks, tab.b)
    return y1, ks, hks


def _clamp(h: Tensor, ctrl: Adaptive) -> Tensor:
    """|h| limited to [min_step, max_step] row by row, sign kept."""
    mag = h.abs().clamp(min=ctrl.min_step, max=ctrl.max_step)
    return torch.where(h < 0, -mag, mag)
