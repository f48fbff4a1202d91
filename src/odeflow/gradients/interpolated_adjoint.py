"""The adjoint of a stiff solve without integrating y backwards (an "interpolated adjoint").

Backwards in time dy/dt = f is as unstable as the forward problem is stiff (eigenvalues
-1000 become +1000), so the backward solve of the plain adjoint needs tiny steps. Here, on
each output interval, the forward solve is repeated from the stored y(t_{i-1}) and its
accepted steps are kept; backwards only (a, g) is integrated,
    da/dt = -a^T df/dy(t, y(t)),   dg/dt = -a^T df/dθ(t, y(t)),
with y(t) the cubic Hermite interpolant of the kept steps (Kim et al. 2021, "Stiff neural
ordinary differential equations", discuss why the backward y is the problem). Used by
`OptimizeDiscretize` for implicit methods.
"""

from __future__ import annotations

import bisect
from typing import Callable, List, Tuple

import torch
from torch import Tensor

from ..solvers.implicit import jacobian_blocks
from ..solvers.integrate import integrate
from ..solvers.runge_kutta import hermite
from ..solvers.state import ErrorNorm, StatePacker
from ..solvers.times import StepTimes


class _Recorder:
    """Step hooks keeping the start of every accepted step."""

    def __init__(self) -> None:
        self.points: List[Tuple[float, Tensor]] = []

    def step(self, t, y, h) -> None:
        pass

    def reject(self, t, y, h) -> None:
        pass

    def accept(self, t: float, y: Tensor, h: float) -> None:
        self.points.append((t, y.detach().clone()))


def _mean(v) -> float:
    return (
        float(v.mean())
        if isinstance(v, Tensor)
        else float(sum(v) / len(v))
        if isinstance(v, (list, tuple))
        else float(v)
    )


class _WithForwardState:
    """Adjoint step hooks for a backward state (a, g) without y: the callbacks receive
    (y(t), a, g) packed, y from the forward interpolant (as for the other methods)."""

    def __init__(self, hooks, y_at: Callable[[float], Tensor]) -> None:
        self.hooks, self.y_at = hooks, y_at

    def _full(self, t: float, state: Tensor) -> Tensor:
        return torch.cat([self.y_at(t).reshape(-1), state])

    def step(self, t: float, state: Tensor, h: float) -> None:
        self.hooks.step(t, self._full(t, state), h)

    def accept(self, t: float, state: Tensor, h: float) -> None:
        self.hooks.accept(t, self._full(t, state), h)

    def reject(self, t: float, state: Tensor, h: float) -> None:
        self.hooks.reject(t, self._full(t, state), h)


def interval_adjoint(
    method,
    fwd_step,
    fwd_norm,
    bwd_step,
    flat_f: Callable,
    y_start: Tensor,
    y_end: Tensor,
    t0: float,
    t1: float,
    a: Tensor,
    g: Tuple[Tensor, ...],
    params: Tuple[Tensor, ...],
    stats,
    hooks=None,
) -> Tuple[Tensor, Tuple[Tensor, ...]]:
    """(a, g) at t0 from (a, g) at t1 > or < t0, along the forward solution from y(t0) = y_start.
    ``hooks``: the adjoint step callbacks (they see (y, a, g))."""
    rec = _Recorder()
    integrate(method, flat_f, y_start, [t0, t1], fwd_step, fwd_norm, stats, rec)
    nodes = [(t, y) for t, y in rec.points if (t - t0) * (t1 - t0) < (t1 - t0) ** 2] + [(t1, y_end)]
    if nodes[0][0] != t0:
        nodes.insert(0, (t0, y_start))
    times = [t for t, _ in nodes]
    # f at both ends of every piece, taken on the piece's side of its ends when f may jump at
    # the forward grid points (perturb): f is never evaluated at a grid point itself.
    gt = StepTimes(
        y_start.dtype, y_start.device, bool(getattr(fwd_step, "perturb", False) or getattr(fwd_step, "jump_t", ()))
    )
    ends = [gt.stages(ta, tb - ta, [0.0, 1.0]) for ta, tb in zip(times[:-1], times[1:])]
    f_left = [flat_f(ta, ya) for (ta, _), (_, ya) in zip(ends, nodes[:-1])]
    f_right = [flat_f(tb, yb) for (_, tb), (_, yb) in zip(ends, nodes[1:])]
    ascending = times[-1] >= times[0]
    keys = times if ascending else [-t for t in times]

    def y_at(tt) -> Tensor:
        tv = float(tt)
        k = min(max(bisect.bisect_right(keys, tv if ascending else -tv) - 1, 0), len(nodes) - 2)
        (ta, ya), (tb, yb) = nodes[k], nodes[k + 1]
        return hermite(ya, yb, f_left[k], f_right[k], (tv - ta) / (tb - ta), tb - ta)

    shape = y_start.shape
    packer = StatePacker((a,) + g)
    ny = a.numel()

    def aug(tt: Tensor, state: Tensor) -> Tensor:
        parts = packer.unpack(state)
        adj = parts[0]
        with torch.enable_grad():
            y_ = y_at(tt).detach().requires_grad_(True)
            fy = flat_f(tt, y_)
            vjps = (
                torch.autograd.grad(fy, (y_,) + params, -adj, allow_unused=True)
                if fy.requires_grad
                else (None,) * (1 + len(params))
            )
        outs = [torch.zeros_like(adj) if vjps[0] is None else vjps[0]]
        outs += [torch.zeros_like(p) if v is None else v for p, v in zip(params, vjps[1:])]
        return packer.pack(tuple(outs))

    def jacobian(tt: Tensor, state: Tensor) -> Tensor:
        return -jacobian_blocks(flat_f, tt, y_at(tt).view(shape), False)[0].T

    aug.jacobian, aug.newton_dims = jacobian, ny  # type: ignore[attr-defined]  # read by the implicit solvers
    norm = None
    if hasattr(bwd_step, "rtol"):  # adaptive backward steps (whatever the forward ones were)
        norm = ErrorNorm(packer, _mean(bwd_step.rtol), _mean(bwd_step.atol))
    state = packer.pack((a,) + g)
    out = integrate(
        method, aug, state, [t1, t0], bwd_step, norm, stats, None if hooks is None else _WithForwardState(hooks, y_at)
    )[-1]
    parts = packer.unpack(out)
    return parts[0], tuple(parts[1:])
