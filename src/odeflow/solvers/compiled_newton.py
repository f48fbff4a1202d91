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

from .implicit import block_solve, newton_lu, stage_lu

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
    lu = newton_lu(jb, h, a)
    nb = jb.shape[0]
    z0 = (c[:, None] * h) * f0[None, :]

    def cond(z: Tensor, it: Tensor, prev: Tensor, ok: Tensor, bad: Tensor) -> Tensor:
        return (it < max_newton) & ~ok & ~bad

    def body(z: Tensor, it: Tensor, prev: Tensor, ok: Tensor, bad: Tensor):
        fz = torch.stack([f(stage_t[i], (flat + z[i]).reshape(shape)).reshape(-1) for i in range(s)])
        dz = block_solve(lu, -(z - h * (a.to(fz.dtype) @ fz)), nb)
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
    jacobian = lambda tt, yy: jacobian_blocks_func(f, tt, yy, batched)  # noqa: E731
    return stage_lu(jacobian, ts.to(y.dtype).unbind(), y.reshape(-1), z, y.shape, h.reshape(()), a)


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
