"""A per-sample attempted step as one compiled call (``solve(..., per_sample=True, compile=True)``).

Eagerly, an attempted step of every row is a few hundred small tensor operations: the stages,
each row's error norm err_b = RMS(e_b / (atol + rtol max(|y_b|, |y1_b|))) (Hairer I eq. 4.11),
the PI controller's factors (Hairer & Wanner II §IV.2), the masked accept and commit, and the
interpolant at each row's next two outputs. Here they are one function compiled by Inductor
(`compiled.run_compiled`, cached on disk as the shared-step compiled solvers are); what stays
in Python is the step's one host read (outputs reached, failures, rows still running) and the
writes of the outputs. The arithmetic is that of `per_sample_loop.PerSampleLoop` on all rows,
so every row takes the same steps as eagerly; backpropagation runs through the compiled
forward's compiled backward. Compacted steps (`PerSample(compact=...)`, fewer rows each time)
stay eager: each row count would be another compile.
"""

from __future__ import annotations

from typing import Callable, Hashable, List, Optional, Tuple

import torch
from torch import Tensor

from .controller import PIController
from .per_sample import _lincomb, _outputs, _rk_step, _rms, _rows, checked_derivative
from .stepping import Adaptive
from .tableau import ButcherTableau

Func = Callable[..., Tensor]
OUTPUTS = 2  # outputs per row written from the compiled step; a step that passes more writes eagerly


def _field(f: Func, dtype: torch.dtype, all_rows: Optional[Tensor]) -> Callable[[Tensor, Tensor], Tensor]:
    """f(t [B], y) as the eager loop calls it: t in the state's dtype, with the rows under compaction."""

    def call(t: Tensor, y: Tensor) -> Tensor:
        return checked_derivative(f(t.to(dtype), y) if all_rows is None else f(t.to(dtype), y, all_rows), y)

    return call


def step(
    tab: ButcherTableau,
    f: Func,
    ctrl: Adaptive,
    lands: bool,
    y: Tensor,
    k1: Optional[Tensor],
    t: Tensor,
    h: Tensor,
    err_prev: Tensor,
    nxt: Tensor,
    steps: Tensor,
    accepted: Tensor,
    rejected: Tensor,
    t_out: Tensor,
    t_fwd: Tensor,
    direction: Tensor,
    c: Tensor,
    dense: Optional[Tensor],
    all_rows: Optional[Tensor],
) -> Tuple:
    """One attempted step of every row and its commit (the body of the compiled call).

    Returns (t, h, y, k1, err_prev, nxt, steps, accepted, rejected) after the step, the host
    read info = [most outputs a row reached, underflows, rows past max_steps, rows running],
    the values at each row's next OUTPUTS outputs and their slots in ys ([OUTPUTS, B]; T: none),
    and what writing more outputs or a failure message needs: (t1, h_try, n_reached, y1, ks, hks, underflow, over)."""
    T = t_out.shape[1]
    control = PIController.pi(ctrl, tab.order, tab.error_order or tab.order)
    fr = _field(f, y.dtype, all_rows)
    act = nxt < T
    h_s = torch.where(act, h, torch.zeros_like(t))
    col = nxt.clamp(max=T - 1).unsqueeze(1)
    if lands:
        target = t_out.gather(1, col).squeeze(1)
        land = act & ((t + h_s - target) * direction > 0)
        h_try = torch.where(land, target - t, h_s)
    else:
        land, h_try = torch.zeros_like(act), h_s
    stage_t = list((t.unsqueeze(1) + h_try.unsqueeze(1) * c).unbind(1))
    k_first = fr(stage_t[0], y) if k1 is None else k1
    hy = _rows(h_try.to(y.dtype), y)
    y1, ks, hks = _rk_step(tab, fr, y, k_first, stage_t, hy)
    assert tab.b_err is not None
    err = _lincomb(None, [k.detach() for k in hks], tab.b_err)
    assert isinstance(ctrl.rtol, (int, float)) and isinstance(ctrl.atol, (int, float))  # checked by the loop
    en = _rms(err / (ctrl.atol + ctrl.rtol * torch.maximum(y.detach().abs(), y1.detach().abs())))
    ok = en <= 1.0
    if ctrl.min_step > 0:
        ok = ok | ((h_try.abs() <= ctrl.min_step) & torch.isfinite(en))
    acc, rej = act & ok, act & ~ok
    t1 = torch.where(land, t_out.gather(1, col).squeeze(1), t + h_try) if lands else t + h_try
    upto = torch.searchsorted(t_fwd, (t1 * direction).unsqueeze(1), right=True).squeeze(1)
    # The controller (PerSampleLoop._control, every row).
    n_reached = torch.where(acc, (upto - nxt).clamp_min(0), torch.zeros_like(nxt))
    factor = control.factors(en, ok, err_prev)
    stuck = t + h_try * factor == t
    underflow = rej & ((h_try.abs() <= ctrl.min_step) | stuck if ctrl.min_step > 0 else stuck)
    base = torch.where(land & (en <= 1.0), h_s, h_try) if lands else h_try
    h_next = torch.where(act, control.clamp(base * factor), h)
    steps_new = steps + act.to(torch.int64)
    nxt_new = nxt + n_reached
    over = act & (steps_new >= ctrl.max_steps) & (nxt_new < T)  # steps_b <= the loop's attempts
    err_prev_new = torch.where(acc, en.clamp_min(1e-4), err_prev)
    info = torch.stack([n_reached.max(), underflow.sum(), over.sum(), (nxt_new < T).sum()])
    # The next OUTPUTS outputs of every row (PerSampleLoop._write_rows), when the step's
    # interpolant needs no further evaluation of f; slots past a row's reached outputs are the
    # scratch row T of ys.
    s_idx = torch.arange(OUTPUTS, device=nxt.device).unsqueeze(1)
    js = (nxt.unsqueeze(0) + s_idx).clamp(max=T - 1)  # [OUTPUTS, B]
    val: Optional[Tensor] = None
    if lands or tab.dense is not None or tab.fsal:
        tj = t_out.gather(1, js.T).T
        h_safe = torch.where(h_try == 0, torch.ones_like(h_try), h_try)
        f1 = ks[-1] if tab.fsal else None
        val = _outputs(tab, y, y1, ks, hks, f1, (tj - t) / h_safe, h_try, tj == t1, lands, dense)
    slot = torch.where(s_idx < n_reached.unsqueeze(0), js, torch.full_like(js, T))
    # The commit (PerSampleLoop._commit, every row).
    keep = _rows(acc, y)
    t_new, y_new = torch.where(acc, t1, t), torch.where(keep, y1, y)
    k_new = torch.where(keep, ks[-1], k_first) if tab.fsal else None
    accepted, rejected = accepted + acc.to(torch.int64), rejected + rej.to(torch.int64)
    state = (t_new, h_next, y_new, k_new, err_prev_new, nxt_new, steps_new, accepted, rejected)
    return state, info, val, slot, (t1, h_try, n_reached, y1, tuple(ks), tuple(hks), underflow, over)


def evaluations(tab: ButcherTableau, k1: Optional[Tensor]) -> int:
    """Evaluations of f in one compiled attempt: every stage, less the carried first one."""
    return tab.stages - (0 if k1 is None else 1)


def key(tab: ButcherTableau, func: Callable, y0: Tensor, ctrl: Adaptive, lands: bool, T: int) -> Hashable:
    """What the compiled step is specialised for (beyond its arguments' shapes)."""
    from .compiled import compile_key

    return ("per_sample", compile_key("per_sample", tab, func, y0), ctrl, lands, T)


def run(fn_key: Hashable, *args) -> Tuple:
    """The compiled `step` (compiled on first use, from the disk cache later)."""
    from .compiled import run_compiled

    return run_compiled(step, fn_key, *args)


def unpack(out: Tuple) -> Tuple[Tuple, List[int], Optional[Tensor], Tensor, Tuple]:
    """(state, info read on the host, value, slot, extras) of a compiled step's results."""
    state, info, val, slot, extra = out
    return state, info.tolist(), val, slot, extra
