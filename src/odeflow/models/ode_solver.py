"""How a model solves its ODEs: method, step control and gradient mode in one object.

Disc-Opt (backprop through fixed steps) and Opt-Disc (continuous adjoint, usually with an
adaptive method) differ only in this object, so every model below runs in both modes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Union

from torch import Tensor

from ..gradients import DiscretizeOptimize, OptimizeDiscretize
from ..solve import solve
from ..solvers.state import State
from ..solvers.stepping import Adaptive, FixedStep

Gradient = Union[DiscretizeOptimize, OptimizeDiscretize]


@dataclass(frozen=True)
class ODESolver:
    """method: a solver name ('euler', 'rk4', 'dopri5', ...); step: FixedStep or Adaptive
    (None: the solver's default); gradient: DiscretizeOptimize() or OptimizeDiscretize()."""

    method: str = "rk4"
    step: Optional[Union[FixedStep, Adaptive]] = None
    gradient: Gradient = field(default_factory=DiscretizeOptimize)

    def __call__(self, func: Callable[[Tensor, State], State], y0: State, t: Tensor) -> State:
        """y at every time in t (stacked along a new first dimension)."""
        return solve(func, y0, t, method=self.method, step=self.step, gradient=self.gradient).ys

    def rows(self, func: Callable[[Tensor, Tensor], Tensor], y0: Tensor, t: Tensor) -> Tensor:
        """Each row of y0 [B, ...] on its own times t [B, T]: y [T, B, ...] from
        `solve(..., per_sample=True)` (each row its own adaptive steps; no gradient in t)."""
        if isinstance(self.step, FixedStep):
            raise ValueError(
                f"solving each series on its own times (per_sample=True) needs an adaptive step; this solver has "
                f"{self.step}: use ODESolver('dopri5', Adaptive(rtol=..., atol=...)) (with OptimizeDiscretize(seminorm=True) for the adjoint), "
                "or put the batch on the union of its times (data.irregular.collate)"
            )
        return solve(
            func, y0, t.detach(), method=self.method, step=self.step, gradient=self.gradient, per_sample=True
        ).ys


def disc_opt(method: str = "rk4", h: float = 0.1) -> ODESolver:
    """Discretize-optimize: fixed steps of at most h, gradients by backprop through them."""
    return ODESolver(method, FixedStep(h), DiscretizeOptimize())


def opt_disc(method: str = "dopri5", rtol: float = 1e-3, atol: float = 1e-4, h: Optional[float] = None) -> ODESolver:
    """Optimize-discretize: the continuous adjoint; adaptive steps unless h is given."""
    step = FixedStep(h) if h is not None else Adaptive(rtol=rtol, atol=atol)
    return ODESolver(method, step, OptimizeDiscretize())
