"""Fixed steps on an explicit grid of times, with outputs interpolated between grid points.

This is torchdiffeq's fixed-grid semantics (``grid_constructor``, or a ``step_size`` whose
grid t0 + k h does not contain the output times): the solver steps from grid point to grid
point and an output time inside a step is interpolated, linearly from (y0, y1) or by cubic
Hermite from (y0, f0, y1, f1). Also the driver of the fixed-step multistep and implicit
methods, which step on the same grids.
"""

from __future__ import annotations

import bisect
import math
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .hooks import StepHooks
from .loop import perturb_stage_times, real_dtype
from .runge_kutta import rk_step
from .solution import SolverStats
from .stepping import FixedStep
from .tableau import ButcherTableau

Func = Callable[[Tensor, Tensor], Tensor]
# step(t0, t1, y0) -> (y1, f(t0, y0) if the step computed it, else None)
StepFn = Callable[[float, float, Tensor], Tuple[Tensor, Optional[Tensor]]]


class GridTimes:
    """Host times to the 0-d tensors handed to f (real dtype of the state), with the
    optional one-ulp perturbation of step starts (c = 0) and ends (c = 1)."""

    def __init__(self, dtype: torch.dtype, device: torch.device, perturb: bool) -> None:
        self.dtype, self.device, self.perturb = real_dtype(dtype), device, perturb

    def stages(self, t0: float, h: float, c: Sequence[float]) -> List[Tensor]:
        ts = torch.tensor([t0 + ci * h for ci in c], dtype=torch.float64).to(self.device, self.dtype)
        if self.perturb:
            ts = perturb_stage_times(ts[None], list(c), 1.0 if h > 0 else -1.0)[0]
        return list(ts.unbind())


def grid_points(step: FixedStep, t_out: Sequence[float]) -> List[float]:
    """The step times: the explicit grid, or each output interval split into equal steps."""
    if step.grid is not None:
        g = list(step.grid)
        if g[0] != t_out[0] or g[-1] != t_out[-1]:
            raise ValueError(
                f"the fixed-step grid must start at t[0]={t_out[0]} and end at t[-1]={t_out[-1]}; got {g[0]} .. {g[-1]}"
            )
        d = [b - a for a, b in zip(g[:-1], g[1:])]
        direction = 1.0 if t_out[-1] >= t_out[0] else -1.0
        if any(x * direction <= 0 for x in d):
            raise ValueError("the fixed-step grid must be strictly monotone in the direction of t")
        return g
    pts = [float(t_out[0])]
    for (a, b), n in zip(zip(t_out[:-1], t_out[1:]), step.substeps(list(t_out))):
        pts.extend(a + (b - a) * (j / n) for j in range(1, n))  # rounded as `loop.FixedGrid`
        pts.append(float(b))
    return pts


def step_size_grid(t0: float, t1: float, h: float) -> List[float]:
    """torchdiffeq's grid for ``step_size``: t0 + k h, the last point replaced by t1."""
    direction = 1.0 if t1 >= t0 else -1.0
    n = math.ceil(abs(t1 - t0) / h + 1)
    pts = [t0 + direction * k * h for k in range(n)]
    pts[-1] = t1
    if len(pts) > 2 and (pts[-1] - pts[-2]) * direction <= 0:
        pts.pop(-2)
    return pts


def on_grid(points: Sequence[float], t_out: Sequence[float]) -> bool:
    """Whether every output time is a grid point (to rounding), so no interpolation is needed."""
    tol = 1e-12 * max(abs(points[0]), abs(points[-1]), 1.0)
    ordered = sorted(points)
    for tv in t_out:
        i = bisect.bisect_left(ordered, tv)
        near = [ordered[k] for k in (i - 1, i) if 0 <= k < len(ordered)]
        if not near or min(abs(p - tv) for p in near) > tol:
            return False
    return True


def rk_grid_step(tab: ButcherTableau, f: Func, times: GridTimes) -> StepFn:
    def step(t0: float, t1: float, y0: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        h = t1 - t0
        ts = times.stages(t0, h, tab.c)
        k1 = f(ts[0], y0)
        y1, _, _ = rk_step(tab, f, y0, k1, ts, h, False)
        return y1, k1

    return step


def integrate_grid(
    step_fn: StepFn,
    f: Func,
    y0: Tensor,
    grid: Sequence[float],
    t_out: Sequence[float],
    interp: str,
    stats: SolverStats,
    hooks: Optional[StepHooks] = None,
    perturb: bool = False,
) -> List[Tensor]:
    """Step through the grid; the states at t_out[1:] (interpolated inside a step). With
    ``perturb`` the end derivatives of the cubic interpolant are taken on the step's side."""
    times = GridTimes(y0.dtype, y0.device, perturb)
    outs: List[Tensor] = []
    direction = 1.0 if t_out[-1] >= t_out[0] else -1.0
    j = 1
    y = y0
    for a, b in zip(grid[:-1], grid[1:]):
        if hooks is not None:
            hooks.step(a, y, b - a)
        y1, f0 = step_fn(a, b, y)
        if hooks is not None:
            hooks.accept(a, y, b - a)
        stats.steps += 1
        stats.accepted += 1
        f1 = None
        while j < len(t_out) and (t_out[j] - b) * direction <= 0:
            tj = t_out[j]
            if tj == b:
                outs.append(y1)
            elif tj == a:
                outs.append(y)
            elif interp == "linear":
                outs.append(y + (y1 - y) * ((tj - a) / (b - a)))
            else:
                if f0 is None:
                    f0 = f(times.stages(a, b - a, [0.0])[0], y)
                if f1 is None:
                    f1 = f(times.stages(a, b - a, [1.0])[0], y1)
                s, h = (tj - a) / (b - a), b - a
                h00, h10 = (1 + 2 * s) * (1 - s) ** 2, s * (1 - s) ** 2
                h01, h11 = s * s * (3 - 2 * s), s * s * (s - 1)
                outs.append(h00 * y + h01 * y1 + h * (h10 * f0 + h11 * f1))
            j += 1
        y = y1
    return outs
