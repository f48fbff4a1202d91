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
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple

import torch
from torch import Tensor

from .per_sample_events import SampleEvents
from .tableau import ButcherTableau

Func = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class PerSample:
    """Options of per-sample stepping (``solve(..., per_sample=PerSample(...))``).

    compact: once at most this fraction of the rows is still running, the vector field is
    evaluated on the running rows only. With compact > 0, f is called as f(t, y, rows): rows
    holds the batch indices of y's rows (per-sample parameters are then mu[rows]); f must treat
    rows independently. 0 (the default) always evaluates every row, as f(t, y).
    step_t, jump_t: [batch, K] tensors of times each row's steps must land on (as
    ``Adaptive(step_t, jump_t)`` for one sample; jump_t: f is discontinuous there and is
    evaluated on the step's side), NaN entries ignored; added to Adaptive's shared ones.
    """

    compact: float = 0.0
    step_t: Optional[Tensor] = field(default=None, compare=False)
    jump_t: Optional[Tensor] = field(default=None, compare=False)

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
    accepted, rows) sees every attempted step's stage times and stage states. Implicit methods
    only: jacobian(t, y, rows) -> [n, d, d] replaces autograd's Jacobian blocks in Newton;
    record(t, y, f0, t1, y1, accepted, rows) sees every attempted step (start, f there, end).
    Filled in by the loop: h_next (the step each row would take next), event_hit, event_t,
    event_y (with graph), event_component ([B] each)."""

    events: Optional[SampleEvents] = None
    h0: Optional[Tensor] = None
    land_on_outputs: bool = False
    jump: Optional[Callable[[Tensor, Tensor, Tensor, Optional[Tensor]], Tensor]] = None
    on_step: Optional[Callable[..., None]] = None
    jacobian: Optional[Callable[[Tensor, Tensor, Optional[Tensor]], Tensor]] = None
    record: Optional[Callable[..., None]] = None
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
        self.full_calls = 0  # calls on every row, counted on the host
        self.part_evals = torch.zeros(batch, dtype=torch.int64, device=device)  # calls on some rows
        self.all_rows = torch.arange(batch, device=device)

    @property
    def row_evals(self) -> Tensor:
        """[B]: the evaluations that included each row."""
        return self.part_evals + self.full_calls

    def raw_all_rows(self) -> Callable[[Tensor, Tensor], Tensor]:
        """f on every row, uncounted and unchecked (for compiled code, after a checked call)."""
        if self.with_rows:
            return lambda t, y: self.f(t.to(self.dtype), y, self.all_rows)
        return lambda t, y: self.f(t.to(self.dtype), y)

    def count_all_rows(self, n: int) -> None:
        """Count n evaluations on every row (made by compiled code)."""
        self.calls += n
        self.full_calls += n

    def __call__(self, t: Tensor, y: Tensor, idx: Optional[Tensor]) -> Tensor:
        self.calls += 1
        if idx is None:
            self.full_calls += 1
        else:
            self.part_evals.index_add_(0, idx, torch.ones_like(idx))
        if self.with_rows:
            out = self.f(t.to(self.dtype), y, self.all_rows if idx is None else idx)
        else:
            out = self.f(t.to(self.dtype), y)
        return checked_derivative(out, y)


def checked_derivative(out, y: Tensor) -> Tensor:
    """f's value if it is a tensor of y's shape; else a ValueError naming the per-sample convention."""
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
    rms: Callable[[Tensor], Tensor] = _rms,
) -> Tensor:
    """Hairer's starting step for every row (as `stepping.initial_step`, with each row's error
    norm ``rms``); one extra f call."""
    scale = atol + rtol * y0.abs()
    d0, d1 = rms(y0 / scale), rms(f0 / scale)
    small = (d0 < 1e-5) | (d1 < 1e-5) | ~torch.isfinite(d1)
    h0 = torch.where(small, torch.full_like(d0, 1e-6), 0.01 * d0 / torch.where(small, torch.ones_like(d1), d1))
    y1 = y0 + _rows((direction * h0).to(y0.dtype), y0) * f0
    f1 = f(t0 + direction * h0, y1)
    d2 = rms((f1 - f0) / scale) / h0
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
    dense: Optional[Tensor] = None,
) -> Tensor:
    """The state at t + theta h of every row's step (theta, at_end [B]): `_outputs` at one point."""
    return _outputs(tab, y, y1, ks, hks, f1, theta.unsqueeze(0), h, at_end.unsqueeze(0), lands, dense)[0]


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
    dense: Optional[Tensor] = None,
) -> Tensor:
    """The states at t + theta h of every row's step, at several points at once (theta, at_end
    [S, B] -> [S, B, ...]): the continuous extension y + sum_i b_i(theta) (h k_i), cubic Hermite
    (f0 = ks[0], f1) without one, y1 itself where the point is the step's end. ``dense``: the
    tableau's dense coefficients as a float64 tensor (made here when not given)."""
    n_out = theta.shape[0]
    if lands:
        return y1.unsqueeze(0).expand(n_out, *y1.shape)
    col = lambda x: x.reshape(*x.shape, *([1] * (y.dim() - 1)))  # noqa: E731  ([S, B] -> [S, B, 1, ...])
    if tab.dense is not None:
        dense = _coefficients(tuple(tab.dense), theta.device) if dense is None else dense
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
