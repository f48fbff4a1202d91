"""Discretize-optimize: differentiate the discrete solver itself (Onken & Ruthotto, seed 000).

The gradient is the exact gradient of the discrete model at whatever step size was used;
step-size decisions are not differentiated. With checkpointing only the states at segment
boundaries are kept and each segment is recomputed during the backward pass, so memory is
(number of segments) states plus one segment's graph instead of the whole trajectory's.

Checkpointed segments run their forward pass without any autograd graph (`_Segment`): a
field that takes derivatives itself (a CNF's divergence, torch.autograd.grad with
create_graph) then costs one plain evaluation per stage, and only the segment being
back-propagated is ever recomputed with its graph. (torch.utils.checkpoint's non-reentrant
mode instead records the forward graph and, for every inner autograd.grad, recomputes the
segment from its start: O(steps^2) work and memory.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from ..solvers.loop import FixedGrid, fixed_grid, integrate_fixed
from ..solvers.plain_run import run_plain
from ..solvers.problem import Problem
from ..solvers.solution import SolverStats
from ..solvers.stepping import FixedStep
from ..solvers.tableau import ButcherTableau


@dataclass(frozen=True)
class DiscretizeOptimize:
    """Backpropagate through the solver's steps.

    checkpoints: split the steps into this many segments and recompute them in the backward
    pass; or segment_steps: steps per segment. Checkpointing needs a FixedStep grid.
    params: with checkpointing, the tensors the field depends on (default: the parameters of
    func when it is an nn.Module, a method of one, or a function whose closure holds modules).
    """

    checkpoints: Optional[int] = None
    segment_steps: Optional[int] = None
    params: Optional[Sequence[Tensor]] = None

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
            ys, _ = run_plain(problem, differentiable_times=differentiable_times)
            return ys
        if not isinstance(problem.step, FixedStep) or problem.step.grid is not None:
            raise ValueError(
                "checkpointed discretize-optimize needs step=FixedStep(h) (or steps=n); for adaptive "
                "steps use DiscretizeOptimize() without checkpoints or OptimizeDiscretize()"
            )
        if not isinstance(problem.method, ButcherTableau):
            raise ValueError(
                f"checkpointed discretize-optimize supports explicit Runge–Kutta methods; got "
                f"{problem.method.name!r}: drop the checkpoints or use OptimizeDiscretize()"
            )
        params = field_params(problem.field, self.params)
        return self._run_checkpointed(problem, differentiable_times, params)

    def _run_checkpointed(
        self, problem: Problem, differentiable_times: bool, params: Tuple[Tensor, ...]
    ) -> List[Tensor]:
        y0, step = problem.y0, problem.step
        assert isinstance(step, FixedStep)  # checked when the mode was chosen
        grid = fixed_grid(
            problem.method,
            problem.t_values,
            step.substeps(problem.t_values),
            y0.dtype,
            y0.device,
            problem.t if differentiable_times else None,
        )
        n = len(grid)
        seg = self.segment_steps or max(1, math.ceil(n / (self.checkpoints or 1)))
        problem.stats.steps += n
        problem.stats.accepted += n
        outs: List[Tensor] = [y0]
        y = y0
        for start in range(0, n, seg):
            stop = min(n, start + seg)
            times = (grid.stage_table[start:stop], grid.h_table[start:stop]) if differentiable_times else ()
            res = _Segment.apply(problem, grid, (start, stop), y, len(times), *times, *params)
            outs.extend(res[:-1])
            y = res[-1]
            if stop in grid.output_steps:
                outs.append(y)
        return outs


def field_params(func: Optional[Callable], given: Optional[Sequence[Tensor]]) -> Tuple[Tensor, ...]:
    """The tensors a checkpointed segment differentiates besides the state: ``given``, else the
    parameters of func as an nn.Module, a method of one, or the modules in its closure."""
    if given is not None:
        params = tuple(given)
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"DiscretizeOptimize(params=...)[{i}] is a {type(p).__name__}, expected a tensor")
        return params
    modules = _modules_of(func)
    if modules is None:
        raise TypeError(
            f"checkpointed discretize-optimize needs the parameters of the vector field: func is a "
            f"{type(func).__name__} holding no nn.Module; pass DiscretizeOptimize(checkpoints=..., "
            "params=[...]) (params=() if it has none)"
        )
    seen: set = set()
    found: List[Tensor] = []
    for m in modules:
        for p in m.parameters():
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                found.append(p)
    return tuple(found)


def _modules_of(func: Optional[Callable]) -> Optional[List[nn.Module]]:
    if isinstance(func, nn.Module):
        return [func]
    owner = getattr(func, "__self__", None)
    if isinstance(owner, nn.Module):
        return [owner]
    cells = getattr(func, "__closure__", None)
    if cells:
        found = [c.cell_contents for c in cells if _filled(c) and isinstance(c.cell_contents, nn.Module)]
        if found:
            return found
    return None


def _filled(cell) -> bool:
    try:
        _ = cell.cell_contents
    except ValueError:
        return False
    return True


class _SegmentGrid:
    """Steps [start, stop) of a grid with differentiable stage times and step sizes (leaves)."""

    def __init__(self, grid: FixedGrid, start: int, stage_table: Tensor, h_table: Tensor) -> None:
        self.start, self.perturb, self.output_steps = start, grid.perturb, grid.output_steps
        self.starts, self.ends = grid.starts, grid.ends
        self.stage_rows = stage_table
        self.h = [None] * start + list(h_table.unbind())
        self._len = len(grid)

    def __len__(self) -> int:
        return self._len

    def times(self, step: int) -> List[Tensor]:
        return list(self.stage_rows[step - self.start].unbind())


class _Segment(torch.autograd.Function):
    """Steps [start, stop) of a fixed grid: no graph in forward, recomputed with one in backward.

    Inputs: (problem, grid, (start, stop), y_in, n_times, *times, *params) with times =
    (stage table rows, step sizes) when the output times are differentiable. Outputs: the
    states at the output times crossed, then the segment's final state."""

    @staticmethod
    def forward(
        ctx, problem: Problem, grid: FixedGrid, span: Tuple[int, int], y_in: Tensor, n_times: int, *rest: Tensor
    ) -> Tuple[Tensor, ...]:
        start, stop = span
        outs, y_out = integrate_fixed(problem.method, problem.func, y_in, grid, SolverStats(), start, stop)
        if stop in grid.output_steps:
            outs = outs[:-1]  # the final state is the last output: returned once, last
        ctx.problem, ctx.grid, ctx.span, ctx.n_times = problem, grid, span, n_times
        ctx.save_for_backward(y_in, *rest)
        return (*outs, y_out)

    @staticmethod
    def backward(ctx, *grads: Optional[Tensor]):
        y_in, *rest = ctx.saved_tensors
        times, params = rest[: ctx.n_times], rest[ctx.n_times :]
        start, stop = ctx.span
        problem, stats = ctx.problem, ctx.problem.stats

        def recount(t: Tensor, y_: Tensor) -> Tensor:
            stats.nfe_backward += 1
            stats.nfe -= 1
            return problem.func(t, y_)

        with torch.enable_grad():
            y_leaf = y_in.detach().requires_grad_(True)
            leaves = [y_leaf]
            grid = ctx.grid
            if times:
                time_leaves = [x.detach().requires_grad_(True) for x in times]
                grid = _SegmentGrid(ctx.grid, start, *time_leaves)
                leaves += time_leaves
            outs, y_out = integrate_fixed(problem.method, recount, y_leaf, grid, SolverStats(), start, stop)
            if stop in ctx.grid.output_steps:
                outs = outs[:-1]
            outputs = [*outs, y_out]
            pairs = [(o, g) for o, g in zip(outputs, grads) if g is not None and o.requires_grad]
            wanted = leaves + [p for p in params if p.requires_grad]
            got = (
                torch.autograd.grad([o for o, _ in pairs], wanted, [g for _, g in pairs], allow_unused=True)
                if pairs
                else [None] * len(wanted)
            )
        it = iter(got)
        y_grad = next(it)
        time_grads = [next(it) for _ in times]
        param_grads = [next(it) if p.requires_grad else None for p in params]
        return (None, None, None, y_grad, None, *time_grads, *param_grads)
