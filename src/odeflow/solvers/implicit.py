"""Implicit Runge–Kutta steps: simplified Newton with an autograd Jacobian, step-size control
for the methods with an embedded error estimate (Hairer & Wanner II, §IV.8).

Per step the stage increments Z (s x n) solve G(Z) = Z - h (A ⊗ I) F(Z) = 0 by
    (I - h A ⊗ J) dZ = -G(Z),      J = df/dy(t, y) from autograd,
one LU factorisation per step, batched over independent rows when ``jacobian='batched'``
(a state [B, d] whose rows do not interact: B blocks of d x d instead of one Bd x Bd).
y1 = y + d^T Z with d^T = b^T A^-1 (A invertible) or y + h b^T F. The embedded error
    err = (I - h g J)^-1 (h g0 f(t, y) + h sum_j (b_hat_j - b_j) F_j)
is filtered by the same kind of matrix so that it stays bounded for stiff components.
Gradients: Newton runs without a graph; then one Newton step with the exact stage Jacobians
is repeated with autograd on, which gives the implicit-function-theorem derivative of the
converged stages, so backpropagation sees the discrete solution as a function of y, t and
the parameters (to the Newton tolerance). A vector field may provide its own
``f.jacobian(t, y) -> [n, n]`` (the adjoint's backward system does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from .controller import PIController
from .errors import SolverError
from .implicit_tableaus import ALL, ImplicitTableau
from .solver import HermiteInterpolant, StepResult
from .state import ErrorNorm
from .stepping import Adaptive
from .times import Span, StepTimes, real_dtype, step_length

Func = Callable[[Tensor, Tensor], Tensor]


def jacobian_blocks(f: Func, t: Tensor, y: Tensor, batched: bool) -> Tensor:
    """df/dy at (t, y) as [B, d, d] (B = 1, d = numel for the full Jacobian)."""
    if hasattr(f, "jacobian"):
        j = f.jacobian(t, y)
        return j.reshape(1, j.shape[-1], j.shape[-1])
    rows = y.reshape(y.shape[0], -1) if batched else y.reshape(1, -1)
    nb, d = rows.shape
    with torch.enable_grad():
        y_ = y.detach().requires_grad_(True)
        out = f(t, y_).reshape(nb, d)
    if not out.requires_grad:
        return torch.zeros(nb, d, d, dtype=y.dtype, device=y.device)
    eye = torch.eye(d, dtype=out.dtype, device=y.device)[:, None, :].expand(d, nb, d)
    try:
        g = torch.autograd.grad(out, y_, eye, is_grads_batched=True, allow_unused=True)[0]
    except RuntimeError:  # vmap over the backward not supported by f: one row at a time
        g = torch.stack(
            [torch.autograd.grad(out, y_, eye[i], retain_graph=True, allow_unused=True)[0] for i in range(d)]
        )
    if g is None:
        return torch.zeros(nb, d, d, dtype=y.dtype, device=y.device)
    # autograd returns J^H v for complex (holomorphic) f: conjugate back to the rows of J.
    g = g.conj() if g.is_complex() else g
    return g.reshape(d, nb, d).permute(1, 0, 2).detach()


def newton_lu(jb: Tensor, h: Union[float, Tensor], coeff: Tensor) -> Tuple[Tensor, Tensor]:
    """LU of I - h coeff ⊗ J per block (jb [B, d, d], coeff [m, m]; h a float, or a tensor that
    broadcasts against [B, m d, m d]): [B, m d, m d] and its pivots."""
    nb, d, _ = jb.shape
    m = coeff.shape[0]
    big = torch.einsum("ij,bpq->bipjq", coeff.to(jb.dtype), jb).reshape(nb, m * d, m * d)
    return torch.linalg.lu_factor(torch.eye(m * d, dtype=jb.dtype, device=jb.device) - h * big)


def block_solve(lu: Tuple[Tensor, Tensor], rhs: Tensor, nb: int) -> Tensor:
    """rhs [m, n] -> the solution [m, n] of the block system factored per block (nb blocks)."""
    m = rhs.shape[0]
    r = rhs.reshape(m, nb, -1).permute(1, 0, 2).reshape(nb, -1, 1)
    x = torch.linalg.lu_solve(*lu, r)
    return x.reshape(nb, m, -1).permute(1, 0, 2).reshape(m, -1)


def stage_lu(
    jacobian: Callable[[Tensor, Tensor], Tensor], ts, flat: Tensor, z: Tensor, shape, h, a: Tensor
) -> Tuple[Tensor, Tensor]:
    """LU of dG/dZ = I - h (A ⊗ I) blockdiag(J(t_j, y + Z_j)) per batch block, the exact stage
    Jacobians (``jacobian(t, y) -> [B, d, d]``) of the differentiable Newton step."""
    js = torch.stack([jacobian(ts[j], (flat + z[j]).reshape(shape)) for j in range(len(ts))])
    s_, nbk, d, _ = js.shape
    big = torch.einsum("ij,jbpq->bipjq", a.to(js.dtype), js).reshape(nbk, s_ * d, s_ * d)
    return torch.linalg.lu_factor(torch.eye(s_ * d, dtype=js.dtype, device=js.device) - h * big)


@dataclass(frozen=True)
class ImplicitRK:
    """An implicit RK method with Newton options.

    jacobian: 'full' or 'batched' (rows of a [B, ...] state independent). newton_tol: on the
    scaled Newton update (relative to the step's tolerance, or absolute 1e-10 for fixed
    steps); max_newton: iterations before a step counts as failed (adaptive: retried with
    h/2; fixed: SolverError).
    """

    tableau: ImplicitTableau
    jacobian: str = "full"
    newton_tol: float = 0.03
    max_newton: int = 10
    grad_iterations: int = 2
    newton: Optional[Any] = field(default=None, compare=False, repr=False)  # compiled_newton.CompiledNewton

    @property
    def name(self) -> str:
        return self.tableau.name

    @property
    def order(self) -> int:
        return self.tableau.order

    @property
    def adaptive(self) -> bool:
        return self.tableau.adaptive

    def with_options(self, **kwargs) -> ImplicitRK:
        return replace(self, **kwargs)

    # ---- one step -------------------------------------------------------------------
    def _solve(self, lu, rhs: Tensor, nb: int, k: Optional[int] = None) -> Tensor:
        """rhs [m, n] -> solution [m, n] of the block system; with k, only the first k
        components have a Jacobian (the rest: identity)."""
        if k is not None:
            return torch.cat([self._solve(lu, rhs[:, :k], 1), rhs[:, k:]], dim=1)
        return block_solve(lu, rhs, nb)

    def newton_step(
        self,
        f: Func,
        ts: Sequence[Tensor],
        t0: Tensor,
        y: Tensor,
        h: float,
        hd: Union[float, Tensor],
        scale: Optional[Tensor],
        f0: Optional[Tensor] = None,
    ) -> Tuple[Optional[Tensor], Optional[Tensor], Tensor, List[Tensor]]:
        """(y1, error estimate or None, f(t0, y), stage derivatives); y1 None when Newton failed.
        ts: the stage times, t0: the step's start time, hd: h (a tensor when the result is
        differentiable in the step's ends), f0: f(t0, y) when known (from the previous step)."""
        tab = self.tableau
        s, shape = tab.stages, y.shape
        flat = y.reshape(-1)
        k = getattr(f, "newton_dims", None)
        nb = shape[0] if (self.jacobian == "batched" and y.dim() > 1 and k is None) else 1
        f0_graph = (f(t0, y) if f0 is None else f0).reshape(-1)  # keeps its graph: dense output, explicit stages
        with torch.no_grad():
            f0 = f0_graph.detach()
            a = torch.tensor(tab.a, dtype=torch.float64).to(y.device, real_dtype(y.dtype))
            # Fixed steps: converged to rounding (1e-10 absolute in float64, 16 ulps in float32).
            tol = self.newton_tol if scale is not None else max(1e-10, 16 * torch.finfo(a.dtype).eps)
            sc = scale.reshape(-1) if scale is not None else (1.0 + flat.abs())
            lu = None
            if self.newton is not None and k is None and not hasattr(f, "jacobian"):  # one compiled call
                ts_t = torch.stack([x.detach().to(torch.float64) for x in ts])
                z, ok, jb = self.newton(ts_t, t0.detach(), y.detach(), h, f0, sc, tol)
            else:
                jb = jacobian_blocks(f, t0, y.detach(), nb > 1)
                lu = newton_lu(jb, h, a)
                z = (torch.tensor(tab.c, dtype=a.dtype, device=y.device)[:, None] * h) * f0[None, :]
                ok = False
                prev = math.inf
                for _ in range(self.max_newton):
                    fz = torch.stack([f(ts[i], (flat + z[i]).reshape(shape)).reshape(-1) for i in range(s)])
                    dz = self._solve(lu, -(z - h * (a.to(fz.dtype) @ fz)), nb, k)
                    z = z + dz
                    size = float((dz.abs() / sc).max())
                    if not math.isfinite(size) or size > 2 * prev > 0:
                        break
                    prev = size
                    if size <= tol:
                        ok = True
                        break
            if not ok:
                return None, None, f0_graph, []
        z = z.detach()
        # Gradients need the differentiable Newton step only where the step depends on something
        # that requires them: f(t0, y) carries y's, t0's and f's parameters' (an unused graph of
        # s Jacobians a step otherwise, e.g. a solve outside torch.no_grad with nothing to train).
        grad = torch.is_grad_enabled() and (f0_graph.requires_grad or any(x.requires_grad for x in ts))
        if grad and k is None:
            # One differentiable Newton step with the exact stage Jacobians: z* - G_Z^-1 G(z*) has
            # the derivative -G_Z^-1 dG of the implicit function theorem (the discrete gradient).
            with torch.no_grad():
                if self.newton is not None and not hasattr(f, "jacobian"):  # one compiled call
                    ts_t = torch.stack([x.detach().to(torch.float64) for x in ts])
                    lu_x = self.newton.exact_lu(ts_t, flat.reshape(shape).detach(), z, h)
                else:
                    lu_x = stage_lu(lambda tt, yy: jacobian_blocks(f, tt, yy, nb > 1), ts, flat, z, shape, h, a)
            fz = torch.stack([f(ts[i], (flat + z[i]).reshape(shape)).reshape(-1) for i in range(s)])
            z = z + self._solve(lu_x, -(z - hd * (a.to(fz.dtype) @ fz)), nb)
        for _ in range(self.grad_iterations if (grad and k is not None) else 0):
            fz = torch.stack([f(ts[i], (flat + z[i]).reshape(shape)).reshape(-1) for i in range(s)])
            z = z + self._solve(lu, -(z - hd * (a.to(fz.dtype) @ fz)), nb, k)
        hf = self._stage_derivatives(a, z, hd * f0_graph)
        if all(abs(x - y) < 1e-15 for x, y in zip(tab.b, tab.a[-1])):  # stiffly accurate
            y1 = flat + z[-1]
        else:
            y1 = flat + torch.tensor(tab.b, dtype=a.dtype, device=y.device).to(hf.dtype) @ hf
        err = None
        if tab.b_hat is not None and scale is not None:
            with torch.no_grad():
                e = torch.tensor([bh - bb for bh, bb in zip(tab.b_hat, tab.b)], dtype=a.dtype, device=y.device)
                raw = e.to(hf.dtype) @ hf.detach() + (h * tab.gamma0) * f0
                g = tab.gamma0 if tab.gamma0 > 0 else tab.a[-1][-1]
                lu_e = newton_lu(jb, h, torch.full((1, 1), g, dtype=a.dtype, device=y.device))
                err = self._solve(lu_e, raw[None, :], nb, k)[0]
        return y1.reshape(shape), None if err is None else err.reshape(shape), f0_graph, list(hf.unbind(0))

    @staticmethod
    def _stage_derivatives(a: Tensor, z: Tensor, hf0: Tensor) -> Tensor:
        """h F from the stage increments (Z = A hF), without new evaluations of f; an explicit
        first stage (zero first row of A) has h F_1 = h f(t, y)."""
        if bool((a[0] == 0).all()):
            rest = torch.linalg.solve(a[1:, 1:].to(z.dtype), z[1:] - a[1:, :1].to(z.dtype) * hf0[None, :])
            return torch.cat([hf0[None, :], rest])
        return torch.linalg.solve(a.to(z.dtype), z)

    # ---- the solver interface of the adaptive loop (solver.Solver) ----------------------
    def controller(self, ctrl: Adaptive) -> PIController:
        return PIController.integral(ctrl, self.order, self.tableau.error_order or self.order)

    def lands_on_outputs(self) -> bool:
        return False  # outputs from the cubic Hermite interpolant

    def check_adaptive(self) -> None:
        if not self.adaptive:
            raise ValueError(
                f"{self.name} has no error estimate: use step=FixedStep(h) (options=dict(step_size=h)) "
                "or radauIIA5, radauIIA3, sdirk2, trbdf2, trapezoid, implicit_euler"
            )

    def step(
        self,
        f: Func,
        norm: Optional[ErrorNorm],
        y: Tensor,
        carry: Optional[Tensor],
        t: float,
        h: float,
        t1: float,
        times: StepTimes,
        before_jump: bool = False,
        span: Optional[Span] = None,
    ) -> StepResult:
        """One step (the `solver.Solver` interface). Adaptive (``norm`` given): the error norm is inf
        when Newton failed, and the controller retries. Fixed steps: Newton converged to rounding,
        else SolverError; with ``span`` the result is differentiable in the step's ends."""
        ts = times.stages(t, h, self.tableau.c, before_jump, span)
        start = times.stages(t, h, [0.0], span=span)[0]
        scale = None if norm is None else norm.scale(y.detach())
        hd = step_length(t, t1, span, y.dtype)
        y1, err, f0, _ = self.newton_step(f, ts, start, y, h, hd, scale, carry)
        if y1 is None:
            if norm is None:
                raise SolverError(
                    f"{self.name}: Newton iteration did not converge",
                    t,
                    h,
                    "use a smaller step or an adaptive implicit method",
                )
            return StepResult(None, math.inf, None)
        error = 0.0 if (norm is None or err is None) else float(norm(err, y.detach(), y1.detach()))
        end = lambda: times.stages(t, t1 - t, [1.0], before_jump, span)[0]  # noqa: E731  (f(t1) from inside)
        f0 = f0.reshape(y.shape)
        dense = HermiteInterpolant(f, end, y, y1, f0, hd, None)
        return StepResult(y1, error, dense, f0, reuse_end=not times.perturb)


IMPLICIT_METHODS = {tab.name: ImplicitRK(tab) for tab in ALL}
