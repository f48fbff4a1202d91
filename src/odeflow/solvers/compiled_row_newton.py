"""Every row's own Newton iteration of a per-sample implicit step as one compiled call.

`per_sample_implicit._RowStep` solves each row's stage increments by simplified Newton, row b
stopping on its own (converged, diverged, or out of iterations; `compiled_newton` for the
iteration of one system). Here the Jacobian blocks (`torch.func`), the LU factorisations and every
row's iterations (one ``torch.while_loop`` that runs while some row iterates) are one program, so
``solve(..., per_sample=True, compile=True)`` with an implicit method makes one compiled call and
one host read per attempted step. The iterates equal the eager loop's.
"""

from __future__ import annotations

import math
from typing import Hashable, Tuple

import torch
from torch import Tensor

from .compiled_newton import Func, jacobian_blocks_func
from .implicit import newton_lu


def row_newton_iterations(
    f: Func,
    y: Tensor,
    f0: Tensor,
    ts: Tensor,
    t0: Tensor,
    h: Tensor,
    a: Tensor,
    c: Tensor,
    scale: Tensor,
    act: Tensor,
    tol: Tensor,
    max_newton: int,
) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Every row's own simplified Newton iteration (`per_sample_implicit._RowStep`): Z [B, s, d],
    converged [B], iterations, Jacobian blocks [B, d, d]. Row b iterates while it is active
    (``act``), neither converged nor diverged; the loop runs until no row iterates, as the eager
    loop does (at least once). ts: the stage times [s, B], t0 and h [B], scale [B, 1, d], tol [1]."""
    from torch._higher_order_ops.while_loop import while_loop

    tol = tol.reshape(())
    nb, shape, s = y.shape[0], y.shape, a.shape[0]
    flat = y.reshape(nb, -1)
    jac = jacobian_blocks_func(f, t0, y, True)
    d = jac.shape[-1]
    hy = h.to(y.dtype).reshape(-1, 1, 1)
    lu, pivots = newton_lu(jac, hy, a)
    z0 = (c.to(y.dtype).reshape(1, -1, 1) * hy) * f0.unsqueeze(1)
    stage_t = [x.clone() for x in ts.unbind(0)]  # the loop refuses inputs that alias each other

    def cond(z, it, prev, ok, live):
        return (it < max_newton) & (live.any() | (it == 0))

    def body(z, it, prev, ok, live):
        fz = torch.stack([f(stage_t[i], (flat + z[:, i]).reshape(shape)).reshape(nb, -1) for i in range(s)], 1)
        rhs = -(z - hy * torch.einsum("ij,bjd->bid", a.to(fz.dtype), fz))
        dz = torch.linalg.lu_solve(lu, pivots, rhs.reshape(nb, s * d, 1)).reshape(nb, s, d)
        z = torch.where(live.reshape(-1, 1, 1), z + dz, z)
        size = (dz.abs() / scale).amax(dim=(1, 2)).to(torch.float64)
        fail = live & (~torch.isfinite(size) | ((size > 2 * prev) & (2 * prev > 0)))
        prev = torch.where(live, size, prev)
        conv = live & ~fail & (size <= tol)
        return z, it + 1, prev, ok | conv, live & ~fail & ~conv

    start = (
        z0,
        torch.zeros((), dtype=torch.int64, device=y.device),
        torch.full((nb,), math.inf, dtype=torch.float64, device=y.device),
        torch.zeros_like(act),
        act.clone(),
    )
    z, it, _, ok, _ = while_loop(cond, body, start)
    return z, ok, it, jac


class CompiledRowNewton:
    """``(ts, t0, y, h, f0, scale, act, tol) -> (Z, converged [B], Jacobian blocks)`` through one
    compiled call (`row_newton_iterations`) on all rows; ``count(n)``: batched evaluations made."""

    def __init__(self, f: Func, stages: Tuple[Tensor, Tensor], max_newton: int, count, key: Hashable) -> None:
        self.f, self.a, self.c, self.max_newton, self.count, self.key = f, stages[0], stages[1], max_newton, count, key

    def __call__(
        self, ts: Tensor, t0: Tensor, y: Tensor, h: Tensor, f0: Tensor, scale: Tensor, act: Tensor, tol: float
    ) -> Tuple[Tensor, Tensor, Tensor]:
        from .compiled import run_compiled

        tol_t = torch.tensor([tol], dtype=torch.float64, device=y.device)
        z, ok, it, jac = run_compiled(
            row_newton_iterations, self.key, self.f, y, f0, ts, t0, h, self.a, self.c, scale, act, tol_t,
            self.max_newton,
        )  # fmt: skip
        self.count(1 + self.a.shape[0] * int(it))  # the one host read of the step's Newton solves
        return z, ok, jac
