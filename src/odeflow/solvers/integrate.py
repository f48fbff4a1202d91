"""Any method through the loop its step control asks for: fixed steps on the grid loop, adaptive
steps on the adaptive loop, both through the `solver.Solver` interface; scipy's methods, which
are not steps, integrate themselves."""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence

from torch import Tensor

from .grid import GridDiff, grid_points, integrate_grid
from .loop import integrate_adaptive
from .solution import SolverStats
from .stepping import FixedStep
from .tableau import ButcherTableau

Func = Callable[[Tensor, Tensor], Tensor]


def integrate(
    method,
    f: Func,
    y0: Tensor,
    t_out: Sequence[float],
    step,
    norm,
    stats: SolverStats,
    hooks: Any = None,  # StepHooks, or any object with its step/accept/reject
    t_tensor: Optional[Tensor] = None,
) -> List[Tensor]:
    """The states at t_out[1:]. With ``t_tensor`` requiring grad they are differentiable in the
    output times (fixed grids: through every step; adaptive steps: through the initial time and
    the interpolation, step sizes fixed)."""
    if not isinstance(method, ButcherTableau) and not hasattr(method, "step"):  # scipy_solver
        return method.integrate(f, y0, t_out, step, norm, stats, hooks, t_tensor)
    if isinstance(step, FixedStep):
        points = grid_points(step, t_out)
        diff = GridDiff.make(step, t_out, t_tensor, points)
        return integrate_grid(method, f, y0, points, t_out, step.interp, stats, hooks, step.perturb, diff)
    outs, _ = integrate_adaptive(method, f, y0, list(t_out), step, norm, stats, t_tensor=t_tensor, hooks=hooks)
    return outs
