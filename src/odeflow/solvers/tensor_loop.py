"""An adaptive explicit Runge–Kutta solve as one tensor program: no host round-trip per step.

The Python loop of `loop.integrate_adaptive` reads every step's error norm on the host to
decide accept/reject. Here the whole solve is one ``torch.while_loop``: the attempted step, the
PI controller (Hairer & Wanner II §IV.2, the same constants and formulas as `Adaptive`),
accept/reject, the dense output at every requested time and the state's jumps at output times
(the adjoint's dL/dy(t_i)) are tensor operations, so `torch.compile` turns the solve into one
compiled program and a GPU makes no synchronisation until the solve ends (statistics and
failures are read once, after the loop). With a carried first-same-as-last derivative, the
vector field after a jump is evaluated under ``torch.cond``, only in the steps that jump.

Each loop iteration is one attempted step from (t, y) with step h:

    accept  <=>  err <= 1  (or |h| <= min_step with a finite err, as torchdiffeq)
    outputs t_j in (t, t1]:  y(t_j) = dense output of the step (y1 where t_j = t1)
    h_next  =  clamp(h * clip(safety err^(-alpha/q) err_prev^(beta/q), min_factor, max_factor))

It takes no gradients through the loop (the adjoint's forward and backward solves run without
them); differentiable solves keep the eager loop or its compiled attempts.
"""

from __future__ import annotations

from typing import Callable, Optional, Tuple

import torch
from torch import Tensor

from .controller import PIController
from .errors import SolverError
from .runge_kutta import combine, rk_step
from .solution import SolverStats
from .state import ErrorNorm
from .stepping import Adaptive
from .tableau import ButcherTableau

Func = Callable[[Tensor, Tensor], Tensor]
Jump = Callable[[Tensor, Tensor], Tensor]  # (index of the output time in t_out, state) -> new state

RUNNING, MAX_STEPS, UNDERFLOW = 0, 1, 2


def supported(tab: ButcherTableau, ctrl: Adaptive, y: Tensor, land_on_outputs: bool) -> bool:
    """Whether this loop can run the solve: an adaptive explicit tableau with an output rule
    (its continuous extension, Hermite with a first-same-as-last derivative, or landing on the
    outputs), a real state, one rtol and atol for every component, the RMS norm, and no
    step_t/jump_t (the rest stays with the eager loop or its compiled attempts)."""
    if not isinstance(tab, ButcherTableau):
        return False
    lands = land_on_outputs or (tab.dense is None and tab.order > 3)
    outputs_ok = lands or tab.dense is not None or tab.fsal
    plain_norm = (
        isinstance(ctrl.rtol, (int, float))
        and isinstance(ctrl.atol, (int, float))
        and ctrl.weights is None
        and ctrl.norm is None
    )
    return tab.adaptive and outputs_ok and plain_norm and not y.is_complex() and not ctrl.step_t and not ctrl.jump_t


def _at(x: Tensor, i: Tensor) -> Tensor:
    """x[i] for a 0-d index tensor, without reading the index on the host."""
    return x.index_select(0, i.reshape(1)).squeeze(0)


def _hermite(y: Tensor, y1: Tensor, f0: Tensor, f1: Tensor, theta: Tensor, h: Tensor) -> Tensor:
    """Cubic Hermite between (y, f0) and (y1, f1) at theta [n] -> [n, *y.shape]."""
    th = theta.reshape(-1, *([1] * y.dim()))
    t2, t3 = th * th, th * th * th
    return (2 * t3 - 3 * t2 + 1) * y + (-2 * t3 + 3 * t2) * y1 + h * ((t3 - 2 * t2 + th) * f0 + (t3 - t2) * f1)


def _dense(tab: ButcherTableau, dense_w: Tensor, y: Tensor, ks, theta: Tensor, h: Tensor) -> Tensor:
    """The method's continuous extension y + h sum_i b_i(theta) k_i at every theta [n]."""
    powers = torch.stack([theta ** (d + 1) for d in range(dense_w.shape[1])])  # [deg, n]
    w = (dense_w @ powers).to(y.dtype)  # [stages, n]
    k = torch.stack(list(ks[: dense_w.shape[0]])).reshape(dense_w.shape[0], -1)
    return (y.reshape(1, -1) + h.to(y.dtype) * (w.T @ k)).reshape(theta.shape[0], *y.shape)


def _interpolated(
    tab: ButcherTableau, dense_w: Tensor, t_out: Tensor, t: Tensor, t1: Tensor, h: Tensor, y: Tensor, y1: Tensor, ks
) -> Tensor:
    """The step's interpolant at every output time [n, *y] (the end state exactly at t1): the
    method's dense output, else cubic Hermite."""
    theta = (t_out - t) / h
    if tab.dense is not None:
        vals = _dense(tab, dense_w, y, ks, theta, h)
    else:
        vals = _hermite(y, y1, ks[0], ks[-1], theta.to(y.dtype), h.to(y.dtype))
    return torch.where((t_out == t1).reshape(-1, *([1] * y.dim())), y1.unsqueeze(0), vals)


def _count(
    counts: Tensor, status: Tensor, accept: Tensor, evals: Tensor, underflow: Tensor, out_of_steps: Tensor
) -> Tuple[Tensor, Tensor]:
    """Counters [attempts, accepted, rejected, evaluations] after an attempt, and the status
    (UNDERFLOW, or MAX_STEPS when the attempts run out before the last output)."""
    one = torch.ones_like(counts[0])
    counts = counts + torch.stack([one, accept.to(torch.int64), (~accept).to(torch.int64), evals.to(torch.int64)])
    status = torch.where(underflow, one * UNDERFLOW, status)
    return counts, torch.where((status == RUNNING) & out_of_steps, one * MAX_STEPS, status)


def _jump(tab, f, jump: Jump, t_out, accept, nxt, nxt_new, t1, t_new, y1, y_new, k_new) -> Tuple[Tensor, ...]:
    """(jumped, state, derivative) after an accepted step that ended on an interior output time:
    the state replaced by ``jump`` (the adjoint's restart) and, for FSAL methods, f evaluated anew."""
    prev = (nxt_new - 1).clamp(min=0)
    jumped = accept & (nxt_new < t_out.shape[0]) & (nxt_new > nxt) & (_at(t_out, prev) == t1)
    y_new = torch.where(jumped, jump(prev, y1), y_new)
    if tab.fsal:
        k_new = torch.cond(
            jumped,
            lambda tt, yy, kk: f(tt.to(yy.dtype), yy),
            lambda tt, yy, kk: kk.clone(),
            (t_new, y_new, k_new),
        )
    return jumped, y_new, k_new


def _solve(
    tab: ButcherTableau,
    f: Func,
    norm: ErrorNorm,
    ctrl: Adaptive,
    lands: bool,
    jump: Optional[Jump],
    y0: Tensor,
    t_out: Tensor,
    h0: Tensor,
    dense_w: Tensor,
    k0: Optional[Tensor],
) -> Tuple[Tensor, ...]:
    """The loop itself (traced whole by torch.compile); t_out and h0 are float64 tensors,
    k0 = f(t0, y0) when the caller has it already."""
    n = t_out.shape[0]
    tdt = y0.dtype
    direction = torch.sign(t_out[-1] - t_out[0])
    direction = torch.where(direction == 0, torch.ones_like(direction), direction)
    control = PIController.pi(ctrl, tab.order, tab.error_order or tab.order)
    c = tab.c
    evals = tab.stages - 1 if tab.fsal else tab.stages
    idx = torch.arange(n, device=y0.device)

    ys = torch.zeros((n,) + tuple(y0.shape), dtype=tdt, device=y0.device)
    t = t_out[0].clone()
    first_evals = 0
    if k0 is not None:
        k1 = k0.clone()
    elif tab.fsal:
        k1, first_evals = f(t.to(tdt), y0), 1
    else:
        k1 = torch.zeros_like(y0)
    zero_i = torch.zeros((), dtype=torch.int64, device=y0.device)
    counts = torch.stack([zero_i, zero_i, zero_i, zero_i + first_evals])
    # Without a carried derivative the first attempt evaluates f(t0, y0) itself, unless given.
    fresh = torch.full((), k0 is None, dtype=torch.bool, device=y0.device)
    h = control.clamp(direction * h0[0].abs())  # h0 has shape [1]: a 0-d input is traced as a Python number
    err_prev = torch.ones((), dtype=torch.float64, device=y0.device)
    nxt = zero_i + 1
    status = zero_i.clone()

    def cond(t, h, y, k1, err_prev, nxt, ys, counts, status, fresh):
        return (nxt < n) & (status == RUNNING)

    def body(t, h, y, k1, err_prev, nxt, ys, counts, status, fresh):
        h_prop = h
        target = _at(t_out, nxt.clamp(max=n - 1))
        land = (t + h - target) * direction > 0 if lands else torch.zeros_like(nxt, dtype=torch.bool)
        h = torch.where(land, target - t, h)
        stage_t = [(t + ci * h).to(tdt) for ci in c]
        if tab.fsal:
            k_first = k1
        else:  # f(t, y) anew, except in the first attempt when the caller gave it
            k_first = torch.cond(
                fresh, lambda tt, yy, kk: f(tt, yy), lambda tt, yy, kk: kk.clone(), (stage_t[0], y, k1)
            )
        h_y = h.to(tdt)
        y1, ks, _ = rk_step(tab, f, y, k_first, stage_t, h_y, False)
        assert tab.b_err is not None  # supported() admits embedded pairs only
        err = combine(None, ks, tab.b_err, h_y)
        en = norm(err, y, y1).to(torch.float64)
        finite = torch.isfinite(en)
        accept = (en <= 1.0) | ((ctrl.min_step > 0) & (h.abs() <= ctrl.min_step) & finite)
        t1 = torch.where(land, target, t + h)
        # Outputs reached by this step: every t_j in (t, t1] not yet written.
        reached = accept & (idx >= nxt) & ((t_out - t1) * direction <= 0)
        vals = y1.unsqueeze(0).expand_as(ys) if lands else _interpolated(tab, dense_w, t_out, t, t1, h, y, y1, ks)
        ys = torch.where(reached.reshape(-1, *([1] * y.dim())), vals, ys)
        nxt_new = nxt + reached.sum()
        t_new = torch.where(accept, t1, t)
        y_new = torch.where(accept, y1, y)
        k_new = (
            torch.where(accept, ks[-1], k1) if tab.fsal else k_first
        )  # non-FSAL: carried only to keep the loop's shape
        jumped = torch.zeros_like(accept)
        if jump is not None:
            jumped, y_new, k_new = _jump(tab, f, jump, t_out, accept, nxt, nxt_new, t1, t_new, y1, y_new, k_new)
        factor = control.factors(en, accept, err_prev)
        err_prev = torch.where(accept, en.clamp_min(1e-4), err_prev)
        underflow = ~accept & ((h.abs() <= ctrl.min_step) | (t + h * factor == t))
        h_next = control.clamp(torch.where(land & accept, h_prop, h) * factor)
        evals_now = evals + jumped.to(torch.int64) - (~fresh).to(torch.int64) * (0 if tab.fsal else 1)
        counts, status = _count(
            counts, status, accept, evals_now, underflow, (nxt_new < n) & (counts[0] + 1 >= ctrl.max_steps)
        )
        # On underflow keep the failing step for the error message.
        h_out = torch.where(underflow, h, h_next)
        return t_new, h_out, y_new, k_new, err_prev, nxt_new, ys, counts, status, torch.ones_like(fresh)

    from torch._higher_order_ops.while_loop import while_loop

    t, h, y, k1, err_prev, nxt, ys, counts, status, fresh = while_loop(
        cond, body, (t, h, y0.clone(), k1, err_prev, nxt, ys, counts, status, fresh)
    )
    return ys[1:], h, t, h, counts, status


def integrate_adaptive_tensor(
    tab: ButcherTableau,
    f: Func,
    y0: Tensor,
    t_out: Tensor,
    ctrl: Adaptive,
    norm: ErrorNorm,
    stats: SolverStats,
    h0: float,
    key,
    land_on_outputs: bool = False,
    jump: Optional[Jump] = None,
    k0: Optional[Tensor] = None,
) -> Tuple[Tensor, float]:
    """Compiled adaptive solve through t_out (float64 [n]); returns (states at t_out[1:] as one
        tensor, next proposed step) and adds the attempts, accepted/rejected steps and evaluations
        to ``stats`` (read once, after the loop). ``k0``: f(t0, y0) when already evaluated (the
    initial-step estimate does). Raises `SolverError` as the eager loop does."""
    from .compiled import run_compiled

    if not isinstance(tab, ButcherTableau):
        return False
    lands = land_on_outputs or (tab.dense is None and tab.order > 3)
    dense_w = torch.tensor(tab.dense if tab.dense is not None else [[0.0]], dtype=torch.float64, device=y0.device)
    h0_t = torch.tensor([abs(h0)], dtype=torch.float64, device=y0.device)
    t64 = t_out.to(device=y0.device, dtype=torch.float64).detach()
    full_key = ("tensor_loop", key, lands, jump is not None, ctrl, t64.shape[0])
    ys, h_next, t_fail, h_fail, counts, status = run_compiled(
        _solve, full_key, tab, f, norm, ctrl, lands, jump, y0, t64, h0_t, dense_w, k0
    )
    attempts, accepted, rejected, evals = counts.tolist()  # the solve's one host sync
    stats.steps += attempts
    stats.accepted += accepted
    stats.rejected += rejected
    stats.count_evals(evals)
    code = int(status)
    if code == MAX_STEPS:
        raise SolverError(
            f"reached max_steps={ctrl.max_steps}",
            float(t_fail),
            float(h_fail),
            "raise max_steps, loosen rtol/atol, or check whether the ODE is stiff",
        )
    if code == UNDERFLOW:
        raise SolverError(
            "step size underflow",
            float(t_fail),
            float(h_fail),
            "the problem may be stiff or singular here, or the state became non-finite; loosen rtol/atol, "
            "lower min_step or check the vector field",
        )
    return ys, float(h_next)
