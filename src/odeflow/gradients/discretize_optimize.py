"""Discretize-optimize: differentiate the discrete solver itself (Onken & Ruthotto, seed 000).

The gradient is the exact gradient of the discrete model at whatever step size was used;
step-size decisions are not differentiated. With checkpointing only the states at segment
boundaries are kept and each segment is recomputed during the backward pass, so memory is
(number of segments) states plus one segment's graph instead of the whole trajectory's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional

from torch import Tensor
from torch.utils.checkpoint import checkpoint

from ..solvers.loop import FixedGrid, integrate_fixed
from ..solvers.problem import Problem
from ..solvers.solution import SolverStats
from ..solvers.stepping import FixedStep
from ..solvers.tableau import ButcherTableau


@dataclass(frozen=True)
class DiscretizeOptimize:
    """Backpropagate through the solver's steps.

    checkpoints: split the steps into this many segments and recompute them in the backward
    pass; or segment_steps: steps per segment. Checkpointing needs a FixedStep grid.
    """

    checkpoints: Optional[int] = None
    segment_steps: Optional[int] = None

    def __post_init__(self) -> None:
        if self.checkpoints is not None and self.segment_steps is not None:
            raise ValueError("give either checkpoints (number of segments) or segment_steps, not both")
        for name in ("checkpoints", "segment_steps"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < 1):
                raise ValueError(f"DiscretizeOptimize({name}={v!r}): must be a positive integer")

    @property
    def checkpointed(self) -> bool:
        return self.checkpoints is not None or self.segment_steps is not None

    def run(self, problem: Problem) -> List[Tensor]:
        """States at every output time (y0 first), differentiable by autograd."""
        differentiable_times = problem.t.requires_grad
        if not self.checkpointed or len(problem.t_values) == 1:
            ys, _ = problem.run(differentiable_times=differentiable_times)
            return ys
        if not isinstance(problem.step, FixedStep) or problem.step.grid is not None:
            raise ValueError("checkpointed discretize-optimize needs step=FixedStep(h) (or steps=n); for adaptive "
                             "steps use DiscretizeOptimize() without checkpoints or OptimizeDiscretize()")
        if not isinstance(problem.method, ButcherTableau):
            raise ValueError(f"checkpointed discretize-optimize supports explicit Runge–Kutta methods; got "
                             f"{problem.method.name!r}: drop the checkpoints or use OptimizeDiscretize()")
        return self._run_checkpointed(problem, differentiable_times)

    def _run_checkpointed(self, problem: Problem, differentiable_times: bool) -> List[Tensor]:
        y0 = problem.y0
        grid = FixedGrid(problem.method, problem.t_values, problem.step.substeps(problem.t_values),
                         y0.dtype, y0.device, problem.t if differentiable_times else None)
        n = len(grid)
        seg = self.segment_steps or max(1, math.ceil(n / self.checkpoints))
        stats = problem.stats
        outs: List[Tensor] = [y0]
        y = y0

        def recount(t: Tensor, y_: Tensor) -> Tensor:
            stats.nfe_backward += 1
            stats.nfe -= 1
            return problem.func(t, y_)

        stats.steps += n
        stats.accepted += n
        for start in range(0, n, seg):
            stop = min(n, start + seg)
            calls = [0]

            def segment(y_in: Tensor, start: int = start, stop: int = stop, calls: List[int] = calls):
                # The first call is the forward pass; later ones are recomputation in backward
                # (which torch may stop early by raising, so evaluations are counted per call).
                f = problem.func if calls[0] == 0 else recount
                calls[0] += 1
                seg_outs, y_out, _ = integrate_fixed(problem.method, f, y_in, grid, SolverStats(), start, stop)
                return (y_out, *seg_outs)

            res = checkpoint(segment, y, use_reentrant=False)
            y = res[0]
            outs.extend(res[1:])
        return outs
