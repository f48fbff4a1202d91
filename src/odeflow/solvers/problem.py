"""Checking a user's (func, y0, t, method, step) once, up front: the `Problem` a gradient mode runs.

Everything a user can get wrong is caught here with a message naming what was received and
how to fix it, so the loops themselves carry no checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from .compiled import scan_compilable
from .counted_func import CheckedCountedFunc
from .errors import SolverError
from .hooks import StepHooks
from .implicit import ImplicitRK
from .methods import all_method_names, get_method
from .solution import SolverStats
from .state import ErrorNorm, State, StatePacker
from .stepping import Adaptive, FixedStep
from .tableau import ButcherTableau

StepControl = Union[FixedStep, Adaptive]


def check_times(t: Union[Tensor, Sequence[float]]) -> Tuple[Tensor, List[float]]:
    """t as a 1-D float tensor (kept for gradients) and as float64 host values."""
    if not isinstance(t, Tensor):
        t = torch.as_tensor(t, dtype=torch.float64)
    if t.dim() != 1 or t.numel() == 0:
        raise ValueError(f"t must be a non-empty 1-D tensor of times; got shape {tuple(t.shape)}")
    if not t.is_floating_point():
        t = t.to(torch.float64)
    values = t.detach().to("cpu", torch.float64).tolist()
    if not all(map(lambda v: v == v and abs(v) != float("inf"), values)):
        raise ValueError(f"t contains NaN or inf: {values}")
    if len(values) > 1:
        diffs = [b - a for a, b in zip(values[:-1], values[1:])]
        if any(d == 0 for d in diffs):
            i = next(i for i, d in enumerate(diffs) if d == 0)
            raise ValueError(
                f"t has a duplicated time {values[i]} at positions {i} and {i + 1}; "
                "times must be strictly increasing or strictly decreasing"
            )
        if not (all(d > 0 for d in diffs) or all(d < 0 for d in diffs)):
            raise ValueError(
                "t is not sorted: times must be strictly increasing (or strictly decreasing to "
                f"integrate backwards); got {values[:8]}{' ...' if len(values) > 8 else ''}"
            )
    return t, values


@dataclass
class Problem:
    """A validated initial-value problem, with the state packed into one tensor."""

    func: Callable[[Tensor, Tensor], Tensor]
    y0: Tensor
    t: Tensor
    t_values: List[float]
    packer: StatePacker
    method: ButcherTableau  # or another method object with .integrate (see methods.get_method)
    step: StepControl
    norm: Optional[ErrorNorm]
    stats: SolverStats = field(default_factory=SolverStats)
    user_func: Optional[Callable] = None
    compile: bool = False
    hooks: Optional[StepHooks] = None

    @property
    def field(self) -> Callable:
        """The user's vector field f(t, y), as given (unpacked states)."""
        assert self.user_func is not None, "make_problem sets the user's field"
        return self.user_func

    def raw_func(self) -> Callable[[Tensor, Tensor], Tensor]:
        """The packed vector field without counting (for compiled code), after the first-call checks."""
        func = self.func
        assert isinstance(func, CheckedCountedFunc)
        if not func.checked:
            func.check(torch.tensor(self.t_values[0], dtype=self.y0.dtype, device=self.y0.device), self.y0)
        return func.flat


def capturing(x: Tensor) -> bool:
    """True inside CUDA-graph capture (torch.cuda.graph), where host syncs are not allowed."""
    return x.is_cuda and torch.cuda.is_current_stream_capturing()


def make_problem(
    func: Callable,
    y0: State,
    t: Union[Tensor, Sequence[float]],
    method: Union[str, ButcherTableau] = "dopri5",
    step: Optional[StepControl] = None,
    compile: bool = False,
    check_finite: bool = True,
) -> Problem:
    """Validate the inputs of a solve (see `odeflow.solve`) and pack the state.
    ``check_finite=False`` skips the one data-dependent check (y0 finite, a host sync)."""
    if not callable(func):
        raise TypeError(f"func must be callable as func(t, y); got {type(func).__name__}")
    tab = get_method(method)
    if step is None:
        step = Adaptive() if tab.adaptive else FixedStep()
    if not isinstance(step, (FixedStep, Adaptive)):
        raise TypeError(f"step must be FixedStep(h) or Adaptive(rtol, atol); got {type(step).__name__}")
    if isinstance(step, Adaptive) and not tab.adaptive:
        valid = all_method_names(adaptive=True)
        raise ValueError(
            f"method {tab.name!r} has no embedded error estimate, so it cannot take adaptive "
            f"steps; use step=FixedStep(h) or one of {valid}"
        )
    packer = StatePacker(y0)
    flat_y0 = packer.pack(y0)
    if check_finite and not bool(torch.isfinite(flat_y0).all()):
        bad = (~torch.isfinite(flat_y0.detach())).nonzero()[:5].reshape(-1).tolist()
        raise ValueError(f"y0 contains NaN or inf (first flat indices {bad}); clean the initial state")
    t_tensor, values = check_times(t)
    norm = None
    if isinstance(step, Adaptive):
        norm = ErrorNorm(packer, step.rtol, step.atol, step.weights, fn=step.norm)
    stats = SolverStats()
    if not isinstance(compile, bool):
        raise TypeError(f"compile must be True or False; got {compile!r}")
    hooks = StepHooks.from_func(func, packer)
    if compile and (
        hooks is not None
        or not (isinstance(tab, (ButcherTableau, ImplicitRK)) or (scan_compilable(tab) and isinstance(step, FixedStep)))
        or (isinstance(step, FixedStep) and (step.grid is not None or step.perturb))
    ):
        raise ValueError(
            "compile=True supports explicit and implicit Runge–Kutta methods, and leapfrog and "
            "explicit_adams on a FixedStep grid, without step callbacks, explicit grids or perturb; "
            "use compile=False"
        )
    return Problem(
        CheckedCountedFunc(func, packer, stats),
        flat_y0,
        t_tensor,
        values,
        packer,
        tab,
        step,
        norm,
        stats,
        user_func=func,
        compile=compile,
        hooks=hooks,
    )


__all__ = ["Problem", "make_problem", "check_times", "SolverError"]
