"""`odeflow.solve(..., per_sample=True)`: the inputs checked, the per-sample loop run, a `Solution`.

Per-sample stepping itself (each row of the batch with its own steps) is `per_sample`; here are
the checks that name what is not supported yet, the time rows ([T] shared or [batch, T]) and the
statistics (batched evaluations, sample-steps, each row's own counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Union

import torch
from torch import Tensor

from .errors import SolverError
from .explicit_methods import EXPLICIT_METHODS
from .hooks import StepHooks
from .implicit import IMPLICIT_METHODS, ImplicitRK
from .methods import get_method
from .per_sample import LoopExtras, PerSample, SampleCounts
from .per_sample_events import SampleEvents, SampleEventTime, sample_events
from .per_sample_implicit_loop import integrate_implicit_per_sample
from .per_sample_loop import integrate_per_sample
from .problem import check_times
from .solution import Solution, SolverStats
from .state import StatePacker
from .stepping import Adaptive
from .tableau import ButcherTableau

_EXPLICIT = sorted(m.name for m in EXPLICIT_METHODS.values() if m.adaptive)
_IMPLICIT = sorted(m.name for m in IMPLICIT_METHODS.values() if m.adaptive)


@dataclass
class PerSampleStats(SolverStats):
    """`SolverStats` of a per-sample solve: ``nfe`` counts the batched evaluations made,
    ``steps``/``accepted``/``rejected`` the sample-steps of all rows together, and
    ``per_sample`` holds each row's own counts."""

    per_sample: Optional[SampleCounts] = None
    event_hit: Optional[Tensor] = None


def _per_sample_times(t: Union[Tensor, Sequence[float]], batch: int) -> Tensor:
    """The output times as a float64 [B, T] tensor: a shared [T] is repeated for every row."""
    if isinstance(t, Tensor) and t.requires_grad:
        raise ValueError(
            "per_sample=True does not differentiate with respect to t yet; pass t.detach() "
            "(or solve without per_sample for gradients in the times)"
        )
    if not isinstance(t, Tensor) or t.dim() == 1:
        shared, _ = check_times(t)
        return shared.detach().to(torch.float64).unsqueeze(0).expand(batch, -1).contiguous()
    if t.dim() != 2 or t.shape[0] != batch or t.shape[1] == 0:
        raise ValueError(
            f"with per_sample=True, t is [T] (shared) or [batch, T] (one row of times per sample, batch = "
            f"y0.shape[0] = {batch}); got shape {tuple(t.shape)}"
        )
    t64 = t.detach().to(torch.float64)
    if not bool(torch.isfinite(t64).all()):
        raise ValueError("t contains NaN or inf")
    if t64.shape[1] > 1:
        d = t64[:, 1:] - t64[:, :-1]
        bad = ~((d > 0).all(dim=1) | (d < 0).all(dim=1))
        if bool(bad.any()):
            b = int(bad.nonzero()[0, 0])
            raise ValueError(
                f"row {b} of t is not strictly monotone: each row must be strictly increasing (or strictly "
                f"decreasing to integrate backwards); got {t64[b, :8].tolist()}"
            )
    return t64


def solve_per_sample(
    func: Callable,
    y0: Tensor,
    t: Union[Tensor, Sequence[float]],
    method: Union[str, ButcherTableau] = "dopri5",
    step: Optional[Adaptive] = None,
    check_finite: bool = True,
    options: Optional[PerSample] = None,
    events=None,
    loop: Optional[Callable] = None,
    compile: bool = False,
) -> Solution:
    """`odeflow.solve(..., per_sample=True)`: validates the inputs and runs `integrate_per_sample`.
    ``loop`` replaces `integrate_per_sample` (same arguments and results), e.g. by one with
    continuous-adjoint gradients. ``compile``: every attempted step as one compiled call
    (explicit methods, `per_sample_compiled`). Returns a `Solution` with ys [T, B, ...], ts as given and
    `PerSampleStats`."""
    _check_state(func, y0)
    step = Adaptive() if step is None else step
    options = options or PerSample()
    tab = _check_method(method, step, options, events, loop, compile)
    if StepHooks.from_func(func, StatePacker(y0)) is not None:
        raise ValueError("per_sample=True does not call step callbacks (callback_step ...) yet; remove them")
    if check_finite and not bool(torch.isfinite(y0).all()):
        raise ValueError("y0 contains NaN or inf; clean the initial state")
    t_out = _per_sample_times(t, y0.shape[0]).to(y0.device)
    if events is not None and t_out.shape[1] < 2:
        raise ValueError("events need at least two times in t (each row's search runs from its first to its last time)")
    extras = LoopExtras(events=_events(events, options, y0) if events is not None else None)
    if isinstance(tab, ImplicitRK) and (
        not isinstance(step.rtol, (int, float)) or not isinstance(step.atol, (int, float))
    ):
        raise ValueError("per_sample=True takes rtol and atol as single numbers (one state tensor)")
    if loop is not None:
        ys, counts, calls = loop(tab, func, y0, t_out, step, options, extras)
    elif isinstance(tab, ImplicitRK):
        ys, counts, calls = integrate_implicit_per_sample(tab, func, y0, t_out, step, options, extras, compile)
    else:
        ys, counts, calls = integrate_per_sample(tab, func, y0, t_out, step, options, extras, compile)
    event_t: Optional[Tensor] = None
    if extras.events is not None:
        ys, event_t = _through_event_times(func, extras, options, ys, t_out)
    if check_finite:
        _check_outputs(ys)
    stats = PerSampleStats(
        nfe=calls,
        steps=int(counts.steps.sum()),
        accepted=int(counts.accepted.sum()),
        rejected=int(counts.rejected.sum()),
        per_sample=counts,
        event_hit=None if extras.event_hit is None else extras.event_hit.cpu(),
    )
    if loop is not None and hasattr(loop, "stats"):
        loop.stats = stats  # the backward solve reports its work there
    ts = t if isinstance(t, Tensor) else torch.as_tensor(t, dtype=torch.float64)
    if event_t is None:
        return Solution(ts=ts, ys=ys, stats=stats)
    status = "event" if bool(stats.event_hit.any()) else "success"  # type: ignore[union-attr]
    return Solution(ts=ts, ys=ys, stats=stats, status=status, event_t=event_t)


def _check_state(func: Callable, y0: Tensor) -> None:
    """func callable, y0 one real floating-point tensor with a leading batch dimension."""
    if not callable(func):
        raise TypeError(f"func must be callable as func(t, y); got {type(func).__name__}")
    if not isinstance(y0, Tensor):
        raise TypeError(
            f"per_sample=True needs y0 as one tensor [batch, ...] (tuple states are not supported yet); "
            f"got {type(y0).__name__}"
        )
    if y0.dim() == 0 or y0.shape[0] == 0 or not y0.is_floating_point():
        raise ValueError(
            f"per_sample=True needs a real floating-point y0 with a leading batch dimension; got shape "
            f"{tuple(y0.shape)} and dtype {y0.dtype}"
        )


def _check_method(
    method: Union[str, ButcherTableau],
    step: Adaptive,
    options: PerSample,
    events,
    loop: Optional[Callable],
    compile: bool = False,
) -> Union[ButcherTableau, ImplicitRK]:
    """The method, if per-sample stepping supports it with these options; else a ValueError naming why."""
    if not isinstance(step, Adaptive):
        raise ValueError(
            f"per_sample=True needs step=Adaptive(...): each sample picks its own steps; got {type(step).__name__} "
            "(a fixed grid is shared by all samples anyway: drop per_sample)"
        )
    tab = get_method(method)
    implicit = isinstance(tab, ImplicitRK) and tab.adaptive
    if not implicit and (not isinstance(tab, ButcherTableau) or not tab.adaptive):
        raise ValueError(
            f"per_sample=True supports adaptive explicit Runge-Kutta methods ({_EXPLICIT}) and adaptive implicit "
            f"ones ({_IMPLICIT}), not {getattr(tab, 'name', method)!r}: odeflow's Adams methods are fixed-step only "
            "(a fixed grid is shared by all samples anyway: solve without per_sample), implicit methods without an "
            "error estimate and scipy_solver have no per-sample form"
        )
    if loop is not None and step.norm is not None:
        raise ValueError(
            "per_sample=True with OptimizeDiscretize() does not support Adaptive(norm=...): the backward "
            "state (y, a) has no per-sample form of a user norm; use weights=... or DiscretizeOptimize()"
        )
    return tab  # type: ignore[return-value]


def _check_outputs(ys: Tensor) -> None:
    """A `SolverError` naming the first sample whose solution became NaN or inf."""
    bad = ~torch.isfinite(ys.detach())
    if bool(bad.any()):
        b = int(bad.reshape(ys.shape[0], ys.shape[1], -1).any(dim=2).any(dim=0).nonzero()[0, 0])
        raise SolverError(
            f"the solution of sample {b} became non-finite (NaN/inf)",
            float("nan"),
            float("nan"),
            "the ODE blows up for this sample; check its vector field or shorten its time span",
        )


def _call_with_rows(fn: Callable, dtype: torch.dtype, batch: int, device: torch.device, with_rows: bool) -> Callable:
    """fn(t, y) on all rows, or fn(t, y, rows) with the batch indices of y's rows (compaction)."""
    all_rows = torch.arange(batch, device=device)
    if not with_rows:
        return lambda t, y, rows=None: fn(t.to(dtype), y)
    return lambda t, y, rows=None: fn(t.to(dtype), y, all_rows if rows is None else rows)


def _events(events, options: PerSample, y0: Tensor) -> SampleEvents:
    """The event functions, called as f is (with the rows' indices under compaction)."""
    evs = sample_events(events)
    with_rows = options.compact > 0
    return SampleEvents(
        evs, lambda fn, t, y, rows: _call_with_rows(fn, y0.dtype, y0.shape[0], y0.device, with_rows)(t, y, rows)
    )


def _through_event_times(func: Callable, extras: LoopExtras, options: PerSample, ys: Tensor, t_out: Tensor):
    """Each row's outputs from its event on hold the state there, with the gradient through
    its event time (`SampleEventTime`); returns (ys, event_t [B], NaN where no event)."""
    assert extras.events is not None and extras.event_hit is not None
    assert extras.event_t is not None and extras.event_y is not None and extras.event_component is not None
    evs, hit, comp = extras.events, extras.event_hit, extras.event_component
    batch, dtype = ys.shape[1], ys.dtype
    f_all = _call_with_rows(func, dtype, batch, ys.device, options.compact > 0)
    fn_cols = [_call_with_rows(ev.fn, dtype, batch, ys.device, options.compact > 0) for ev in evs.events]

    def g(tt: Tensor, y: Tensor) -> Tensor:
        """Each row's own event component (the one that stopped it) at (t, y)."""
        vals = torch.cat([torch.as_tensor(fn(tt, y)).reshape(batch, -1) for fn in fn_cols], dim=1)
        vals = vals.real if vals.is_complex() else vals
        return vals.gather(1, comp.clamp_min(0).unsqueeze(1)).squeeze(1)

    t_e, y_e = SampleEventTime.apply(extras.event_t, extras.event_y, hit, f_all, g)
    direction = torch.sign(t_out[:, -1] - t_out[:, 0])
    t_safe = torch.where(hit, extras.event_t, t_out[:, -1])
    after = (t_out - t_safe.unsqueeze(1)) * direction.unsqueeze(1) >= 0  # [B, T]: outputs from the event on
    held = (after & hit.unsqueeze(1)).T.reshape(ys.shape[0], batch, *([1] * (ys.dim() - 2)))
    ys = torch.where(held, y_e.unsqueeze(0).expand_as(ys), ys)
    return ys, t_e
