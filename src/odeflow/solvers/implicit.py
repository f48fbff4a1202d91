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
from dataclasses import dataclass, replace
from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from .errors import SolverError
from .grid import GridDiff, GridTimes, Span, grid_points, integrate_grid, step_length
from .hooks import StepHooks
from .implicit_tableaus import ALL, ImplicitTableau
from .loop import real_dtype
from .solution import SolverStats
from .stepping import Adaptive, FixedStep, initial_step

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
    def _newton_matrix(self, jb: Tensor, h: float, coeff: Tensor) -> Tuple[Tensor, Tensor]:
        """LU of I - h coeff ⊗ J per block: [B, m d, m d]."""
        nb, d, _ = jb.shape
        m = coeff.shape[0]
        big = torch.einsum("ij,bpq->bipjq", coeff.to(jb.dtype), jb).reshape(nb, m * d, m * d)
        mat = torch.eye(m * d, dtype=jb.dtype, device=jb.device) - h * big
        return torch.linalg.lu_factor(mat)

    def _solve(self, lu, rhs: Tensor, nb: int, k: Optional[int] = None) -> Tensor:
        """rhs [m, n] -> solution [m, n] of the block system; with k, only the first k
        components have a Jacobian (the rest: identity)."""
        if k is not None:
            return torch.cat([self._solve(lu, rhs[:, :k], 1), rhs[:, k:]], dim=1)
        m = rhs.shape[0]
        r = rhs.reshape(m, nb, -1).permute(1, 0, 2).reshape(nb, -1, 1)
        x = torch.linalg.lu_solve(*lu, r)
        return x.reshape(nb, m, -1).permute(1, 0, 2).reshape(m, -1)

    def step(
        self,
        f: Func,
        t: float,
        y: Tensor,
        h: float,
        times: GridTimes,
        scale: Optional[Tensor],
        span: Optional[Span] = None,
    ) -> Tuple[Optional[Tensor], Optional[Tensor], Tensor, List[Tensor]]:
        """(y1, error estimate or None, f(t, y), stage derivatives); y1 None when Newton failed.
        With ``span`` (the step's ends as tensors) the result is differentiable in them."""
        tab = self.tableau
        s, shape = tab.stages, y.shape
        flat = y.reshape(-1)
        k = getattr(f, "newton_dims", None)
        nb = shape[0] if (self.jacobian == "batched" and y.dim() > 1 and k is None) else 1
        ts = times.stages(t, h, tab.c, span)
        t0 = times.stages(t, h, [0.0], span)[0]
        hd = h if span is None else step_length(t, t + h, span, y.dtype)  # h, differentiable with a span
        f0_graph = f(t0, y).reshape(-1)  # keeps its graph: dense output and explicit first stages use it
        with torch.no_grad():
            f0 = f0_graph.detach()
            jb = jacobian_blocks(f, t0, y.detach(), nb > 1)
            a = torch.tensor(tab.a, dtype=torch.float64).to(y.device, real_dtype(y.dtype))
            lu = self._newton_matrix(jb, h, a)
            z = (torch.tensor(tab.c, dtype=a.dtype, device=y.device)[:, None] * h) * f0[None, :]
            # Fixed steps: converged to rounding (1e-10 absolute in float64, 16 ulps in float32).
            tol = self.newton_tol if scale is not None else max(1e-10, 16 * torch.finfo(a.dtype).eps)
            sc = scale.reshape(-1) if scale is not None else (1.0 + flat.abs())
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
        if torch.is_grad_enabled() and k is None:
            # One differentiable Newton step with the exact stage Jacobians: z* - G_Z^-1 G(z*) has
            # the derivative -G_Z^-1 dG of the implicit function theorem (the discrete gradient).
            with torch.no_grad():
                lu_x = self._exact_lu(f, ts, flat, z, shape, h, a, nb)
            fz = torch.stack([f(ts[i], (flat + z[i]).reshape(shape)).reshape(-1) for i in range(s)])
            z = z + self._solve(lu_x, -(z - hd * (a.to(fz.dtype) @ fz)), nb)
        for _ in range(self.grad_iterations if (torch.is_grad_enabled() and k is not None) else 0):
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
                lu_e = self._newton_matrix(jb, h, torch.full((1, 1), g, dtype=a.dtype, device=y.device))
                err = self._solve(lu_e, raw[None, :], nb, k)[0]
        return y1.reshape(shape), None if err is None else err.reshape(shape), f0_graph, list(hf.unbind(0))

    def _exact_lu(self, f: Func, ts, flat: Tensor, z: Tensor, shape, h: float, a: Tensor, nb: int):
        """LU of dG/dZ = I - h (A ⊗ I) blockdiag(J(t_j, y + Z_j)) per batch block."""
        js = torch.stack([jacobian_blocks(f, ts[j], (flat + z[j]).reshape(shape), nb > 1) for j in range(len(ts))])
        s_, nbk, d, _ = js.shape
        big = torch.einsum("ij,jbpq->bipjq", a.to(js.dtype), js).reshape(nbk, s_ * d, s_ * d)
        return torch.linalg.lu_factor(torch.eye(s_ * d, dtype=js.dtype, device=js.device) - h * big)

    @staticmethod
    def _stage_derivatives(a: Tensor, z: Tensor, hf0: Tensor) -> Tensor:
        """h F from the stage increments (Z = A hF), without new evaluations of f; an explicit
        first stage (zero first row of A) has h F_1 = h f(t, y)."""
        if bool((a[0] == 0).all()):
            rest = torch.linalg.solve(a[1:, 1:].to(z.dtype), z[1:] - a[1:, :1].to(z.dtype) * hf0[None, :])
            return torch.cat([hf0[None, :], rest])
        return torch.linalg.solve(a.to(z.dtype), z)

    # ---- drivers ----------------------------------------------------------------------
    def integrate(
        self,
        f: Func,
        y0: Tensor,
        t_out: Sequence[float],
        step,
        norm,
        stats: SolverStats,
        hooks: Optional[StepHooks] = None,
        events=None,
        t_tensor: Optional[Tensor] = None,
    ) -> List[Tensor]:
        """States at t_out[1:]. ``events`` (adaptive steps only, an `events.EventWatcher`): checked
        after every accepted step on the cubic Hermite interpolant; a terminal event ends the
        solve (t_out[-1] may then be +-inf). With ``t_tensor`` requiring grad the states are
        differentiable in the output times (fixed grids: through every step; adaptive steps:
        through the initial time and the interpolation, step sizes fixed)."""
        if isinstance(step, FixedStep):
            points = grid_points(step, t_out)
            return integrate_grid(
                self.stepper(f, y0, step),
                f,
                y0,
                points,
                t_out,
                step.interp,
                stats,
                hooks,
                step.perturb,
                GridDiff.make(step, t_out, t_tensor, points),
            )
        if not self.adaptive:
            raise ValueError(
                f"{self.name} has no error estimate: use step=FixedStep(h) (options=dict(step_size=h)) "
                "or radauIIA5, radauIIA3, sdirk2, trbdf2, trapezoid, implicit_euler"
            )
        differentiable = t_tensor is not None and t_tensor.requires_grad
        return self._adaptive(
            f, y0, list(t_out), step, norm, stats, hooks, events, t_tensor if differentiable else None
        )

    def stepper(self, f: Func, y0: Tensor, step: FixedStep):
        """advance(t0, t1, y) -> (y1, f(t0, y)): one fixed step."""
        times = GridTimes(y0.dtype, y0.device, step.perturb)

        def advance(t0: float, t1: float, y: Tensor, span: Optional[Span] = None):
            y1, _, f0, _ = self.step(f, t0, y, t1 - t0, times, None, span)
            if y1 is None:
                raise SolverError(
                    f"{self.name}: Newton iteration did not converge",
                    t0,
                    t1 - t0,
                    "use a smaller step or an adaptive implicit method",
                )
            return y1, f0.reshape(y.shape)

        return advance

    def _adaptive(
        self,
        f: Func,
        y0: Tensor,
        t_out: List[float],
        ctrl: Adaptive,
        norm,
        stats: SolverStats,
        hooks: Optional[StepHooks],
        events=None,
        t_tensor: Optional[Tensor] = None,
    ) -> List[Tensor]:
        """Adaptive steps through t_out; with ``t_tensor`` the stage times are T0 + (t - t0) and the
        outputs the Hermite interpolant at the tensors t_j (the discrete model's time derivative
        with the step sizes held fixed, as for the explicit adaptive methods)."""
        direction = 1.0 if t_out[-1] >= t_out[0] else -1.0
        # Steps land on step_t and jump_t; with jumps, the stages at a step's ends are taken one
        # ulp inside it (f never evaluated at a jump, as with perturb).
        stops = sorted(
            (v for v in set(ctrl.step_t) | set(ctrl.jump_t) if (v - t_out[0]) * direction > 0),
            key=lambda v: v * direction,
        )
        tt = None if t_tensor is None else t_tensor.to(torch.float64)
        anchor = None if tt is None else (tt[0], float(t_out[0]))
        times = GridTimes(y0.dtype, y0.device, bool(ctrl.jump_t), anchor)
        t, y = t_out[0], y0
        one = lambda tv: times.stages(tv, direction, [0.0])[0]  # noqa: E731  (f at tv, integration side)
        h = ctrl.first_step
        if h is None:
            with torch.no_grad():
                f0 = f(one(t), y.detach())
                h = initial_step(f, t, y.detach(), f0, self.order, norm, direction, one)
        h = ctrl.clamp(direction * abs(h))
        q = min(self.order, self.tableau.error_order or self.order) + 1
        outs: List[Tensor] = []
        nxt, attempts = 1, 0
        while nxt < len(t_out):
            attempts += 1
            if attempts > ctrl.max_steps:
                raise SolverError(f"reached max_steps={ctrl.max_steps}", t, h, "raise max_steps or loosen rtol/atol")
            h_proposed, land = h, None
            while stops and (stops[0] - t) * direction <= 0:
                stops.pop(0)
            if stops and (t + h - stops[0]) * direction > 0:
                land = stops[0]
                h = land - t
            if hooks is not None:
                hooks.step(t, y, h)
            y1, err, f0, _ = self.step(f, t, y, h, times, norm.scale(y.detach()))
            stats.steps += 1
            if y1 is None:
                en = math.inf
            else:
                en = float(norm(err, y.detach(), y1.detach()))
            if y1 is not None and (en <= 1.0 or (ctrl.min_step > 0 and abs(h) <= ctrl.min_step and math.isfinite(en))):
                stats.accepted += 1
                if hooks is not None:
                    hooks.accept(t, y, h)
                t1 = t + h if land is None else land
                f1 = None
                end = times.stages(t, h, [1.0])[0]  # f(t1) from inside the step
                if events is not None:
                    f1_cache: List[Tensor] = []

                    def dense(v: float, t=t, y=y, y1=y1, f0=f0, h=h, end=end, cache=f1_cache) -> Tensor:
                        if not cache:
                            cache.append(f(end, y1))
                        return interpolate_hermite(y, y1, f0.reshape(y.shape), cache[0], (v - t) / h, h)

                    if events.check(t, y, t1, y1, dense):
                        return outs
                while nxt < len(t_out) and (t_out[nxt] - t1) * direction <= 0:
                    if t_out[nxt] == t1 and tt is None:
                        outs.append(y1)
                    else:
                        if f1 is None:
                            f1 = f(end, y1)
                        theta: Union[float, Tensor] = (t_out[nxt] - t) / h
                        if tt is not None:  # differentiable in t_j and (through the stages) in t_0
                            theta = ((tt[nxt] - (tt[0] + (t - t_out[0]))) / h).to(real_dtype(y.dtype))
                        outs.append(interpolate_hermite(y, y1, f0.reshape(y.shape), f1, theta, h))
                    nxt += 1
                t, y = t1, y1
                factor = ctrl.max_factor if en == 0 else ctrl.safety * en ** (-1.0 / q)
                factor = min(ctrl.max_factor, max(ctrl.min_factor, factor))
                h = h if land is None else h_proposed  # a step shortened to land is not the controller's
            else:
                stats.rejected += 1
                if hooks is not None:
                    hooks.reject(t, y, h)
                factor = (
                    0.5 if not math.isfinite(en) else max(ctrl.min_factor, min(1.0, ctrl.safety * en ** (-1.0 / q)))
                )
                if t + h * factor == t or abs(h) <= ctrl.min_step:
                    raise SolverError("step size underflow", t, h, "loosen rtol/atol or check the vector field")
            h = ctrl.clamp(h * factor)
        return outs


def interpolate_hermite(
    y0: Tensor, y1: Tensor, f0: Tensor, f1: Tensor, theta: Union[float, Tensor], h: float
) -> Tensor:
    """Cubic Hermite y(t + theta h) between two accepted steps."""
    s = theta
    h00, h10, h01, h11 = (1 + 2 * s) * (1 - s) ** 2, s * (1 - s) ** 2, s * s * (3 - 2 * s), s * s * (s - 1)
    return h00 * y0 + h01 * y1 + h * (h10 * f0 + h11 * f1)


IMPLICIT_METHODS = {tab.name: ImplicitRK(tab) for tab in ALL}
