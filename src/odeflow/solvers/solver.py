"""The one solver interface the adaptive loop drives: a method is a pure step.

    carry            f(t, y) when the previous step left it (first-same-as-last, or the
                     interpolant's end derivative), else None
    solver.step(f, norm, y, carry, t, h, t1, times, before_jump)  ->  StepResult
        y1           the state at t1 = t + h (None when the step failed, e.g. Newton)
        error        the weighted error norm (inf when the step failed): <= 1 accepts
        dense        the step's interpolant on [t, t1]: dense output or cubic Hermite
        carry        what the next step may reuse: f(t1, y1) when known

The loop (`loop.integrate_adaptive`) owns time, outputs, events, jumps and hooks, the
controller (`controller.PIController`) owns the step size, and the solver owns nothing but
its step. Explicit Runge–Kutta (`ExplicitRK`, eager or with a compiled attempt) and implicit
Runge–Kutta (`implicit.ImplicitRK`) implement it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Protocol, Sequence, Tuple, Union

from torch import Tensor

from .controller import PIController
from .explicit_methods import EXPLICIT_METHODS
from .runge_kutta import LOW_PRECISION, Step, dense_outputs, hermite, interpolate, rk_step, rk_step_compensated
from .state import ErrorNorm
from .stepping import Adaptive
from .tableau import ButcherTableau
from .times import Span, StepTimes, step_length

Func = Callable[[Tensor, Tensor], Tensor]


class Interpolant(Protocol):
    """A step's continuous output y(t + theta h), theta in [0, 1]."""

    batched: bool  # many float thetas at once in one product (dense output)

    def at(self, theta: Union[float, Tensor]) -> Tensor: ...

    def many(self, thetas: List[float]) -> List[Tensor]: ...

    def end_derivative(self) -> Optional[Tensor]: ...


class HermiteInterpolant:
    """Cubic Hermite through (y0, f0) and (y1, f1); f1 = f(t1, y1) is evaluated once, when first
    needed, at ``end()`` (the step's end time, one ulp inside it before a jump of f)."""

    batched = False

    def __init__(
        self, f: Func, end: Callable[[], Tensor], y0: Tensor, y1: Tensor, f0: Tensor, h: Step, f1: Optional[Tensor]
    ) -> None:
        self.f, self.end, self.y0, self.y1, self.f0, self.h, self.f1 = f, end, y0, y1, f0, h, f1

    def end_derivative(self) -> Optional[Tensor]:
        return self.f1

    def _f1(self) -> Tensor:
        if self.f1 is None:
            self.f1 = self.f(self.end(), self.y1)
        return self.f1

    def at(self, theta: Union[float, Tensor]) -> Tensor:
        return hermite(self.y0, self.y1, self.f0, self._f1(), theta, self.h)

    def many(self, thetas: List[float]) -> List[Tensor]:
        return [self.at(th) for th in thetas]


class RKDenseInterpolant:
    """An explicit Runge–Kutta method's continuous extension (dopri5, tsit5, ...)."""

    batched = True

    def __init__(self, tab: ButcherTableau, y0: Tensor, y1: Tensor, ks: Sequence[Tensor], h: Step) -> None:
        self.tab, self.y0, self.y1, self.ks, self.h = tab, y0, y1, ks, h

    def end_derivative(self) -> Optional[Tensor]:
        return self.ks[-1] if self.tab.fsal else None

    def at(self, theta: Union[float, Tensor]) -> Tensor:
        return interpolate(self.tab, self.y0, self.y1, self.ks, None, theta, self.h)

    def many(self, thetas: List[float]) -> List[Tensor]:
        assert not isinstance(self.h, Tensor)
        return dense_outputs(self.tab, self.y0, self.ks, thetas, self.h)


@dataclass
class StepResult:
    """One attempted step (see the module docstring)."""

    y1: Optional[Tensor]
    error: float
    dense: Optional[Interpolant]
    f0: Optional[Tensor] = None  # f(t, y) when the step evaluated it
    state: Any = None  # what the next step receives, when not f(t1, y1) (e.g. a multistep history)
    reuse_end: bool = True  # f(t1, y1), once known, may start the next step

    def carry(self) -> Any:
        """The next step's ``carry``: the solver's state, else f(t1, y1) where it is known."""
        if self.state is not None:
            return self.state
        return self.dense.end_derivative() if (self.dense is not None and self.reuse_end) else None


class Solver(Protocol):
    """What the loops need from a method (besides ``adaptive``: whether it has an error estimate).
    Any object with this interface can be passed as ``method=`` (docs/design.md has an example)."""

    @property
    def name(self) -> str: ...

    @property
    def order(self) -> int: ...

    def controller(self, ctrl: Adaptive) -> PIController: ...

    def lands_on_outputs(self) -> bool: ...

    def check_adaptive(self) -> None: ...

    def step(
        self,
        f: Func,
        norm: Optional[ErrorNorm],
        y: Tensor,
        carry: Any,
        t: float,
        h: float,
        t1: float,
        times: StepTimes,
        before_jump: bool = False,
        span: Optional[Span] = None,
    ) -> StepResult: ...


# A compiled attempt: (y, k1, t, h, times) -> (y1, stage derivatives, error norm as a 0-d tensor)
Attempt = Callable[..., Tuple[Tensor, Sequence[Tensor], Tensor]]


def try_step(
    tab: ButcherTableau,
    f: Func,
    norm: ErrorNorm,
    y: Tensor,
    k1: Optional[Tensor],
    stage_times: Sequence[Tensor],
    h: Step,
) -> Tuple[Tensor, List[Tensor], Tensor]:
    """One attempted explicit step: (y1, stage derivatives, error norm as a 0-d tensor); eager,
    or traced whole by the compiled solver."""
    if k1 is None:
        k1 = f(stage_times[0], y)
    y1, ks, err = rk_step(tab, f, y, k1, stage_times, h, True)
    assert err is not None
    return y1, ks, norm(err.detach(), y.detach(), y1.detach())


class ExplicitRK:
    """An explicit Runge–Kutta tableau as a `Solver`: the eager step, or ``attempt`` (a compiled
    one, `compiled.CompiledAttempt`) for steps that do not end on a jump of f."""

    def __init__(self, tab: ButcherTableau, attempt: Optional[Attempt] = None) -> None:
        self.tab, self.attempt = tab, attempt
        self.name, self.order = tab.name, tab.order

    def controller(self, ctrl: Adaptive) -> PIController:
        return PIController.pi(ctrl, self.tab.order, self.tab.error_order or self.tab.order)

    def lands_on_outputs(self) -> bool:
        # Cubic Hermite output is third order: fine for bosh3/heun, too coarse for dopri8.
        return self.tab.dense is None and self.tab.order > 3

    def check_adaptive(self) -> None:
        if not self.tab.adaptive:
            valid = sorted(m.name for m in EXPLICIT_METHODS.values() if m.adaptive)
            raise ValueError(
                f"method {self.tab.name!r} has no error estimate for adaptive stepping; use FixedStep(h) or one of "
                f"{valid}"
            )

    def step(
        self,
        f: Func,
        norm: Optional[ErrorNorm],
        y: Tensor,
        carry: Any,
        t: float,
        h: float,
        t1: float,
        times: StepTimes,
        before_jump: bool = False,
        span: Optional[Span] = None,
    ) -> StepResult:
        """One step; without ``norm`` (fixed steps) no error estimate and no host sync."""
        tab = self.tab
        if norm is None:
            return self._fixed_step(f, y, carry, t, h, t1, times, before_jump, span)
        if self.attempt is not None and not before_jump:
            y1, ks, en = self.attempt(y, carry, t, h, times)
        else:
            y1, ks, en = try_step(tab, f, norm, y, carry, times.stages(t, h, tab.c, before_jump), h)
        return self._result(f, y, y1, ks, t, h, t1, times, before_jump, span, float(en))  # the step's host sync

    def _fixed_step(self, f, y, carry, t, h, t1, times: StepTimes, before_jump: bool, span) -> StepResult:
        """A step without error estimate. A low-precision state is accumulated by compensated
        summation (`rk_step_compensated`): its state is then (f(t, y) or None, compensation)."""
        tab = self.tab
        ts = times.stages(t, h, tab.c, before_jump, span)
        hd = h if span is None else step_length(t, t1, span, y.dtype)
        if y.dtype in LOW_PRECISION:
            k1, comp = carry if carry is not None else (None, None)
            y1, comp, stages = rk_step_compensated(tab, f, y, comp, f(ts[0], y) if k1 is None else k1, ts, hd)
            res = self._result(f, y, y1, stages, t, h, t1, times, before_jump, span, 0.0)
            end = stages[-1] if (tab.fsal and res.reuse_end) else None
            res.state = (end, comp)
            return res
        y1, stages, _ = rk_step(tab, f, y, f(ts[0], y) if carry is None else carry, ts, hd, False)
        return self._result(f, y, y1, stages, t, h, t1, times, before_jump, span, 0.0)

    def _result(self, f, y, y1, ks, t, h, t1, times: StepTimes, before_jump: bool, span, error: float) -> StepResult:
        tab, hd = self.tab, (h if span is None else step_length(t, t1, span, y.dtype))
        reuse = not times.perturb  # perturbed ends see f from inside the step: not the next step's start
        if tab.dense is not None:
            return StepResult(y1, error, RKDenseInterpolant(tab, y, y1, ks, hd), ks[0], reuse_end=reuse)
        end = lambda: times.stages(t, t1 - t, [1.0], before_jump, span)[0]  # noqa: E731
        f1 = ks[-1] if tab.fsal else None
        return StepResult(y1, error, HermiteInterpolant(f, end, y, y1, ks[0], hd, f1), ks[0], reuse_end=reuse)


def as_solver(method: Union[ButcherTableau, Solver]) -> Solver:
    """An explicit tableau wrapped as a `Solver`; a `Solver` as it is."""
    return ExplicitRK(method) if isinstance(method, ButcherTableau) else method
