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
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Union

import torch
from torch import Tensor

from .hooks import StepHooks
from .solution import SolverStats
from .solver import HermiteInterpolant, Solver, as_solver
from .stepping import FixedStep
from .tableau import ButcherTableau
from .times import StepTimes, real_dtype, step_length

Func = Callable[[Tensor, Tensor], Tensor]


def grid_tensor(step: FixedStep, t_out: Sequence[float], t_tensor: Tensor, points: Sequence[float]) -> Tensor:
    """The grid points as differentiable functions of the output times (float64): each output
    interval split into equal steps moves with its ends, t_i + (t_{i+1} - t_i) j / n; on an
    explicit grid only its ends, t[0] and t[-1] (when the grid ends there), move, and with
    ``grid_from_t0`` (torchdiffeq's t0 + k h) every point moves with t[0]."""
    tt = t_tensor.to(torch.float64)
    if step.grid is not None:
        ends_on_t = points[-1] == t_out[-1]  # else the grid runs past t[-1], which is interpolated
        inner = torch.tensor(list(points[1 : len(points) - ends_on_t]), dtype=torch.float64, device=tt.device)
        if step.grid_from_t0:  # t0 + k h: every point moves with t[0]
            inner = tt[0] + (inner - float(t_out[0]))
        return torch.cat([tt[:1], inner] + ([tt[-1:]] if ends_on_t else []))
    pieces = [tt[:1]]
    for i, n in enumerate(step.substeps(list(t_out))):
        frac = torch.arange(1, n + 1, dtype=torch.float64, device=tt.device) / n
        inner = tt[i] + (tt[i + 1] - tt[i]) * frac[:-1]
        pieces += [inner, tt[i + 1 : i + 2]]
    return torch.cat(pieces)


def grid_points(step: FixedStep, t_out: Sequence[float]) -> List[float]:
    """The step times: the explicit grid, or each output interval split into equal steps."""
    if step.grid is not None:
        g = list(step.grid)
        direction = 1.0 if t_out[-1] >= t_out[0] else -1.0
        if g[0] != t_out[0] or (g[-1] - t_out[-1]) * direction < 0:
            raise ValueError(
                f"the fixed-step grid must start at t[0]={t_out[0]} and reach t[-1]={t_out[-1]}; got {g[0]} .. {g[-1]}"
            )
        d = [b - a for a, b in zip(g[:-1], g[1:])]
        if any(x * direction <= 0 for x in d):
            raise ValueError("the fixed-step grid must be strictly monotone in the direction of t")
        # A grid running past t[-1] ends with the step containing it (t[-1] is interpolated there).
        last = next(i for i, v in enumerate(g) if (v - t_out[-1]) * direction >= 0)
        return g[: last + 1]
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


@dataclass(frozen=True)
class GridDiff:
    """Differentiable times of a grid solve: the grid points and the output times (float64
    tensors, `grid_tensor`), and whether every output time is a grid point that moves with it
    (equal steps per output interval) rather than a fixed point of an explicit grid."""

    points: Tensor
    t: Tensor
    tied: bool

    @staticmethod
    def make(step: FixedStep, t_out: Sequence[float], t_tensor: Optional[Tensor], points: Sequence[float]):
        """The differentiable times when ``t_tensor`` requires grad, else None."""
        if t_tensor is None or not t_tensor.requires_grad:
            return None
        return GridDiff(grid_tensor(step, t_out, t_tensor, points), t_tensor.to(torch.float64), step.grid is None)


def integrate_grid(
    method: Union[ButcherTableau, Solver],
    f: Func,
    y0: Tensor,
    grid: Sequence[float],
    t_out: Sequence[float],
    interp: str,
    stats: SolverStats,
    hooks: Optional[StepHooks] = None,
    perturb: bool = False,
    diff: Optional[GridDiff] = None,
) -> List[Tensor]:
    """Step any method (a `solver.Solver`: explicit RK, implicit RK, Adams) through the grid; the
    states at t_out[1:], interpolated inside a step: ``interp`` 'linear' from (y0, y1), 'cubic'
    Hermite from (y0, f0, y1, f1), or 'own': the step's own interpolant (the Adams polynomial,
    an explicit method's continuous extension, else cubic Hermite). With ``perturb`` the stages
    and end derivatives at the grid points are taken on the step's side. With ``diff`` the
    steps and the interpolation are differentiable in the output times (each step's span); an
    output time on a fixed grid point is the interpolant's end, so its derivative is the step's
    slope."""
    solver = as_solver(method)
    times = StepTimes(y0.dtype, y0.device, perturb)
    outs: List[Tensor] = []
    direction = 1.0 if t_out[-1] >= t_out[0] else -1.0
    j = 1
    y, state = y0, None
    for k, (a, b) in enumerate(zip(grid[:-1], grid[1:])):
        span = None if diff is None else (diff.points[k], diff.points[k + 1])
        if hooks is not None:
            hooks.step(a, y, b - a)
        res = solver.step(f, None, y, state, a, b - a, b, times, span=span)
        assert res.y1 is not None and res.dense is not None  # fixed steps raise instead of failing
        y1 = res.y1
        if hooks is not None:
            hooks.accept(a, y, b - a)
        stats.steps += 1
        stats.accepted += 1
        cubic: Optional[HermiteInterpolant] = None
        while j < len(t_out) and (t_out[j] - b) * direction <= 0:
            tj = t_out[j]
            j += 1
            if span is None and tj == b:
                outs.append(y1)
                continue
            if span is None and tj == a:
                outs.append(y)
                continue
            if diff is not None and diff.tied and tj == b:
                outs.append(y1)  # the grid point is t_j itself
                continue
            s: Union[float, Tensor] = (tj - a) / (b - a)
            h: Union[float, Tensor] = b - a
            if span is not None and diff is not None:
                s = ((diff.t[j - 1] - span[0]) / (span[1] - span[0])).to(real_dtype(y.dtype))
                h = step_length(a, b, span, y.dtype)
            if interp == "linear":
                outs.append(y1 + (y1 - y) * (s - 1) if tj == b else y + (y1 - y) * s)
            elif interp == "own":
                outs.append(res.dense.at(s))
            else:
                if cubic is None:
                    f0 = res.f0 if res.f0 is not None else f(times.stages(a, b - a, [0.0], span=span)[0], y)
                    end = lambda a=a, b=b, span=span: times.stages(a, b - a, [1.0], span=span)[0]  # noqa: E731
                    cubic = HermiteInterpolant(f, end, y, y1, f0.reshape(y.shape), h, None)
                outs.append(cubic.at(s))
        y, state = y1, res.carry()
    return outs
