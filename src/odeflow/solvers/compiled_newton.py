"""The Newton iteration of an implicit Runge–Kutta step as one compiled call.

`implicit.ImplicitRK.newton_step` solves G(Z) = Z - h (A ⊗ I) F(Z) = 0 for the stage increments
by simplified Newton (Hairer & Wanner II, §IV.8):

    J = df/dy(t0, y),   (I - h A ⊗ J) dZ = -G(Z),   Z <- Z + dZ,

stopping when max |dZ| / scale <= tol (converged), when the update grows (|dZ| > 2 |dZ_prev|:
diverging) or after max_newton iterations. Eagerly each iteration reads |dZ| on the host. Here
the Jacobian (vector-Jacobian products over the unit vectors, `torch.func`), the LU
factorisation and the iterations (one ``torch.while_loop``) are one program, so
``solve(..., compile=True)`` with an implicit method makes one compiled call per attempted step
and one host read of its outcome. The stopping rule, and so the iterates, equal the eager loop's;
the differentiable Newton step, the error estimate and the step-size control stay as they are.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Hashable, Tuple

import torch
from torch import Tensor

Func = Callable[[Tensor, Tensor], Tensor]


def jacobian_blocks_func(f: Func, t: Tensor, y: Tensor, batched: bool) -> Tensor:
    """df/dy at (t, y) as [B, d, d] (B = 1, d = numel unless ``batched``: rows independent),
    by one vector-Jacobian product per unit vector, batched with ``torch.func.vmap``."""
    nb = y.shape[0] if batched else 1
    d = y.numel() // nb
    out, vjp = torch.func.vjp(lambda yy: f(t, yy).reshape(nb, d), y)  # type: ignore[misc]  # no has_aux
    eye = torch.eye(d, dtype=out.dtype, device=y.device)[:, None, :].expand(d, nb, d)
    (g,) = torch.func.vmap(vjp)(eye)
    return g.reshape(d, nb, d).permute(1, 0, 2)


def block_solve(lu: Tensor, pivots: Tensor, rhs: Tensor, nb: int) -> Tensor:
    """rhs [m, n] -> the solution [m, n] of the block system factored per block (nb blocks)."""
    m = rhs.shape[0]
    r = rhs.reshape(m, nb, -1).permute(1, 0, 2).reshape(nb, -1, 1)
    x = torch.linalg.lu_solve(lu, pivots, r)
    return x.reshape(nb, m, -1).permute(1, 0, 2).reshape(m, -1)


def newton_iterations(
    f: Func,
    y: Tensor,
    f0: Tensor,
    ts: Tensor,
    t0: Tensor,
    h: Tensor,
    a: Tensor,
    c: Tensor,
    scale: Tensor,
    tol: Tensor,
    max_newton: int,
    batched: bool,
) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """(Z [s, n], converged (bool), iterations, Jacobian blocks [B, d, d]) of one step's simplified
    Newton iteration from Z0 = c h f0; ts: the stage times [s]; t0, h the step and tol as [1] (a 0-d
    tensor argument stops torch 2.13's saved compile with TensorifyScalarRestartAnalysis)."""
    from torch._higher_order_ops.while_loop import while_loop

    h, tol, t0 = h.reshape(()), tol.reshape(()), t0.reshape(())

    shape, flat, s = y.shape, y.reshape(-1), a.shape[0]
    stage_t = ts.to(y.dtype).unbind()
    jb = jacobian_blocks_func(f, t0.to(y.dtype), y, batched)
    nb, d, _ = jb.shape
    big = torch.einsum("ij,bpq->bipjq", a.to(jb.dtype), jb).reshape(nb, s * d, s * d)
    lu, pivots = torch.linalg.lu_factor(torch.eye(s * d, dtype=jb.dtype, device=jb.device) - h * big)
    z0 = (c[:, None] * h) * f0[None, :]

    def cond(z: Tensor, it: Tensor, prev: Tensor, ok: Tensor, bad: Tensor) -> Tensor:
        return (it < max_newton) & ~ok & ~bad

    def body(z: Tensor, it: Tensor, prev: Tensor, ok: Tensor, bad: Tensor):
        fz = torch.stack([f(stage_t[i], (flat + z[i]).reshape(shape)).reshape(-1) for i in range(s)])
        dz = block_solve(lu, pivots, -(z - h * (a.to(fz.dtype) @ fz)), nb)
        size = (dz.abs() / scale).amax()
        diverged = ~torch.isfinite(size) | ((size > 2 * prev) & (prev > 0))
        return z + dz, it + 1, size, ~diverged & (size <= tol), diverged

    start = (
        z0,
        torch.zeros((), dtype=torch.int64, device=y.device),
        torch.full((), math.inf, dtype=scale.dtype, device=y.device),
        torch.zeros((), dtype=torch.bool, device=y.device),
        torch.zeros((), dtype=torch.bool, device=y.device),
    )
    z, it, _, ok, _ = while_loop(cond, body, start)
    return z, ok, it, jb


def exact_lu(f: Func, ts: Tensor, y: Tensor, z: Tensor, h: Tensor, a: Tensor, batched: bool) -> Tuple[Tensor, Tensor]:
    """LU of dG/dZ = I - h (A ⊗ I) blockdiag(J(t_j, y + Z_j)) per batch block (the exact stage
    Jacobians of the differentiable Newton step that gradients take), h as [1]."""
    h, flat = h.reshape(()), y.reshape(-1)
    stage_t = ts.to(y.dtype).unbind()
    js = torch.stack(
        [jacobian_blocks_func(f, stage_t[j], (flat + z[j]).reshape(y.shape), batched) for j in range(len(stage_t))]
    )
    s_, nb, d, _ = js.shape
    big = torch.einsum("ij,jbpq->bipjq", a.to(js.dtype), js).reshape(nb, s_ * d, s_ * d)
    lu, pivots = torch.linalg.lu_factor(torch.eye(s_ * d, dtype=js.dtype, device=js.device) - h * big)
    return lu, pivots


class CompiledNewton:
    """``(ts, t0, y, h, f0, scale, tol) -> (Z, converged, iterations, Jacobian blocks)`` through
    one compiled call (`newton_iterations`); ``count(n)`` receives the evaluations of f made
    (one for the Jacobian, s per iteration, as the eager iteration counts them)."""

    def __init__(
        self, f: Func, stages: Tuple[Tensor, Tensor], max_newton: int, batched: bool, count, key: Hashable
    ) -> None:
        self.f, self.a, self.c = f, stages[0], stages[1]
        self.max_newton, self.batched, self.count, self.key = max_newton, batched, count, key

    def __call__(
        self, ts: Tensor, t0: Tensor, y: Tensor, h: float, f0: Tensor, scale: Tensor, tol: float
    ) -> Tuple[Tensor, bool, Tensor]:
        from .compiled import run_compiled

        real = self.a.dtype
        h_t = torch.tensor([h], dtype=real, device=y.device)
        tol_t = torch.tensor([tol], dtype=scale.dtype, device=y.device)
        z, ok, it, jb = run_compiled(
            newton_iterations, self.key, self.f, y, f0, ts, t0.reshape(1), h_t, self.a, self.c, scale, tol_t,
            self.max_newton, self.batched,
        )  # fmt: skip
        converged, iterations = bool(ok), int(it)  # the one host read of the step's Newton solve
        self.count(1 + self.a.shape[0] * iterations)
        return z, converged, jb

    def exact_lu(self, ts: Tensor, y: Tensor, z: Tensor, h: float) -> Tuple[Tensor, Tensor]:
        """`exact_lu` through one compiled call (s evaluations of f, as the eager Jacobians)."""
        from .compiled import run_compiled

        h_t = torch.tensor([h], dtype=self.a.dtype, device=y.device)
        self.count(self.a.shape[0])
        return run_compiled(exact_lu, (self.key, "exact_lu"), self.f, ts, y, z, h_t, self.a, self.batched)


def with_compiled_newton(problem: Any, y0: Tensor) -> Any:
    """The problem's implicit method with its Newton iterations compiled (`CompiledNewton`); any
    other method as it is."""
    from .compiled import compile_key
    from .implicit import ImplicitRK
    from .times import real_dtype

    method = problem.method
    if not isinstance(method, ImplicitRK):
        return method
    tab, real = method.tableau, real_dtype(y0.dtype)
    stages = (
        torch.tensor(tab.a, dtype=torch.float64).to(y0.device, real),
        torch.tensor(tab.c, dtype=torch.float64).to(y0.device, real),
    )
    batched = method.jacobian == "batched" and y0.dim() > 1
    key = compile_key("newton", method, problem.field, y0)
    newton = CompiledNewton(problem.raw_func(), stages, method.max_newton, batched, problem.stats.count_evals, key)
    return method.with_options(newton=newton)


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
    big = torch.einsum("ij,bpq->bipjq", a.to(jac.dtype), jac).reshape(nb, s * d, s * d)
    hy = h.to(y.dtype).reshape(-1, 1, 1)
    lu, pivots = torch.linalg.lu_factor(torch.eye(s * d, dtype=jac.dtype, device=jac.device) - hy * big)
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
