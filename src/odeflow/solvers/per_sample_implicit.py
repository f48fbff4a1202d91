"""Adaptive implicit Runge–Kutta steps per sample: every row its own step size and its own Newton.

Row b solves its stage increments Z_b (s x d) from G_b(Z_b) = Z_b - h_b (A ⊗ I) F_b(Z_b) = 0 by
simplified Newton,
    (I - h_b A ⊗ J_b) dZ_b = -G_b(Z_b),     J_b = ∂f_b/∂y_b(t_b, y_b)  (autograd, d x d per row),
one LU per row and step, all rows in one batched factorisation (Hairer & Wanner II, §IV.8).
A row stops iterating once its own scaled update is below the tolerance (or it diverges), so
each row runs the Newton iteration it runs alone. The embedded error estimate, filtered by
(I - h_b g J_b)^-1, its RMS per row, the controller h_b' = h_b clip(safety err_b^(-1/q)) and
the cubic Hermite output are those of `implicit.ImplicitRK` for one sample; a step whose
Newton failed is retried with h_b / 2. Gradients (backpropagation through the steps): one
Newton step with each row's exact stage Jacobians, repeated with autograd on, gives the
implicit-function-theorem derivative of the converged stages, as in `ImplicitRK.newton_step`.
"""

from __future__ import annotations

import math
from typing import Callable, Hashable, List, Optional, Tuple

import torch
from torch import Tensor

from .compiled_row_newton import CompiledRowNewton
from .implicit import ImplicitRK, jacobian_blocks
from .per_sample import LoopExtras, _Field, _put, _rows


def _lu(jac: Tensor, h: Tensor, coeff: Tensor) -> Tuple[Tensor, Tensor]:
    """LU of I - h_b coeff ⊗ J_b for every row: jac [B, d, d] (or [s, B, d, d] per stage), h [B]."""
    if jac.dim() == 4:
        big = torch.einsum("ij,jbpq->bipjq", coeff.to(jac.dtype), jac)
    else:
        big = torch.einsum("ij,bpq->bipjq", coeff.to(jac.dtype), jac)
    nb, m, d = big.shape[0], big.shape[1], big.shape[2]
    big = big.reshape(nb, m * d, m * d)
    eye = torch.eye(m * d, dtype=jac.dtype, device=jac.device)
    return torch.linalg.lu_factor(eye - h.to(jac.dtype).reshape(-1, 1, 1) * big)


def _solve(lu: Tuple[Tensor, Tensor], rhs: Tensor) -> Tensor:
    """rhs [B, m, d] -> the solution of every row's block system, [B, m, d]."""
    nb, m, d = rhs.shape
    return torch.linalg.lu_solve(*lu, rhs.reshape(nb, m * d, 1)).reshape(nb, m, d)


class _RowStep:
    """One attempted implicit step of every row (see the module docstring)."""

    def __init__(
        self,
        method: ImplicitRK,
        field: _Field,
        dtype: torch.dtype,
        device: torch.device,
        jacobian: Optional[Callable[[Tensor, Tensor, Optional[Tensor]], Tensor]] = None,
        compile_key: Optional[Hashable] = None,
    ) -> None:
        tab = method.tableau
        self.method, self.field, self.jacobian = method, field, jacobian
        self.stage_t: List[Tensor] = []  # the last step's stage times and stage states
        self.stage_y: List[Tensor] = []
        self.a = torch.tensor(tab.a, dtype=torch.float64, device=device).to(dtype)
        self.c = torch.tensor(tab.c, dtype=torch.float64, device=device)
        self.b = torch.tensor(tab.b, dtype=torch.float64, device=device).to(dtype)
        assert tab.b_hat is not None
        self.e = torch.tensor([bh - bb for bh, bb in zip(tab.b_hat, tab.b)], dtype=torch.float64, device=device)
        self.e = self.e.to(dtype)
        self.gamma0 = tab.gamma0
        self.g = tab.gamma0 if tab.gamma0 > 0 else tab.a[-1][-1]
        self.stiffly_accurate = all(abs(x - y) < 1e-15 for x, y in zip(tab.b, tab.a[-1]))
        self.explicit_first = all(v == 0 for v in tab.a[0])
        # compile: the Newton iterations of all rows one compiled call (steps on every row only;
        # compacted steps, on some rows, and a given Jacobian keep the eager iteration)
        self.newton = None
        if compile_key is not None and jacobian is None:
            self.newton = CompiledRowNewton(
                field.raw_all_rows(), (self.a, self.c), method.max_newton, field.count_all_rows, compile_key
            )

    def _jac(self, t: Tensor, y: Tensor, idx: Optional[Tensor]) -> Tensor:
        """Every row's d x d Jacobian block at (t, y): the given ``jacobian`` or autograd's."""
        if self.jacobian is not None:
            return self.jacobian(t, y, idx)
        return jacobian_blocks(lambda tt, yy: self.field(tt, yy, idx), t, y, True)

    def __call__(
        self,
        t: Tensor,
        y: Tensor,
        h: Tensor,
        act: Tensor,
        scale: Tensor,
        idx: Optional[Tensor] = None,
        nudged: Optional[Callable[[List[Tensor]], List[Tensor]]] = None,
        t_start: Optional[Tensor] = None,
    ):
        """(y1, err, f0, ok) of the rows ``idx`` (all: None): ok [n] says where Newton converged.
        ``nudged`` moves the stage times off a discontinuity, ``t_start`` is the time f(t, y)
        is taken at (both: `per_sample_stops`). Keeps the stage times and states in
        ``stage_t`` / ``stage_y``."""
        f, nb, s = self.field, y.shape[0], self.method.tableau.stages
        shape, flat = y.shape, y.reshape(y.shape[0], -1)
        ts = list((t.unsqueeze(1) + h.unsqueeze(1) * self.c).unbind(1))
        ts = ts if nudged is None else nudged(ts)
        t0 = t if t_start is None else t_start
        hy = h.to(y.dtype).reshape(-1, 1, 1)

        def stages(z: Tensor) -> Tensor:
            return torch.stack([f(ts[i], (flat + z[:, i]).reshape(shape), idx).reshape(nb, -1) for i in range(s)], 1)

        f0_graph = f(t0, y, idx).reshape(nb, -1)
        with torch.no_grad():
            f0 = f0_graph.detach()
            sc = scale.reshape(nb, 1, -1)
            if self.newton is not None and idx is None:
                ts_t = torch.stack([x.detach().to(torch.float64) for x in ts])
                z, ok, jac = self.newton(
                    ts_t, t0.detach().to(torch.float64), y.detach(), h, f0, sc, act, self.method.newton_tol
                )
            else:
                jac = self._jac(t0, y.detach(), idx)
                lu = _lu(jac, h, self.a)
                z = (self.c.to(y.dtype).reshape(1, -1, 1) * hy) * f0.unsqueeze(1)
                live, ok = act.clone(), torch.zeros_like(act)
                prev = torch.full((nb,), math.inf, dtype=torch.float64, device=y.device)
                for _ in range(self.method.max_newton):
                    fz = stages(z)
                    dz = _solve(lu, -(z - hy * torch.einsum("ij,bjd->bid", self.a, fz)))
                    z = torch.where(_rows(live, z), z + dz, z)
                    size = (dz.abs() / sc).amax(dim=(1, 2)).to(torch.float64)
                    fail = live & (~torch.isfinite(size) | ((size > 2 * prev) & (2 * prev > 0)))
                    prev = torch.where(live, size, prev)
                    conv = live & ~fail & (size <= self.method.newton_tol)
                    ok, live = ok | conv, live & ~fail & ~conv
                    if not bool(live.any()):
                        break
        z = z.detach()
        # the differentiable Newton step only where something requires gradients (as ImplicitRK)
        if torch.is_grad_enabled() and (f0_graph.requires_grad or any(x.requires_grad for x in ts)):
            with torch.no_grad():
                js = torch.stack([self._jac(ts[j], (flat + z[:, j]).reshape(shape), idx) for j in range(s)])
                lu_x = _lu(js, h, self.a)
            fz = stages(z)
            z = z + _solve(lu_x, -(z - hy * torch.einsum("ij,bjd->bid", self.a, fz)))
        self.stage_t, self.stage_y = ts, [(flat + z[:, i]).reshape(shape) for i in range(s)]
        hf0 = hy[:, :, 0] * f0_graph
        if self.explicit_first:
            rest = z[:, 1:] - self.a[1:, :1].reshape(1, -1, 1) * hf0.unsqueeze(1)
            hf = torch.cat([hf0.unsqueeze(1), torch.linalg.solve(self.a[1:, 1:], rest)], dim=1)
        else:
            hf = torch.linalg.solve(self.a, z)
        y1 = flat + z[:, -1] if self.stiffly_accurate else flat + torch.einsum("i,bid->bd", self.b, hf)
        with torch.no_grad():
            raw = torch.einsum("i,bid->bd", self.e, hf.detach()) + (hy[:, :, 0] * self.gamma0) * f0
            g_coeff = torch.full((1, 1), self.g, dtype=torch.float64, device=y.device)
            err = _solve(_lu(jac, h, g_coeff), raw.unsqueeze(1))[:, 0]
        return y1.reshape(shape), err.reshape(shape), f0_graph.reshape(shape), ok


def _hermite(y: Tensor, y1: Tensor, f0: Tensor, f1: Tensor, theta: Tensor, h: Tensor) -> Tensor:
    """Every row's cubic Hermite interpolant at its theta [B] (h [B]): the implicit step's output."""
    th, hy = _rows(theta.to(y.dtype), y), _rows(h.to(y.dtype), y)
    return (
        (1 + 2 * th) * (1 - th) ** 2 * y
        + th * th * (3 - 2 * th) * y1
        + hy * (th * (1 - th) ** 2 * f0 + th * th * (th - 1) * f1)
    )


class _Events:
    """Terminal events of the implicit loop (as `PerSampleLoop._events`): each row's sign
    changes inside its accepted step, located on the step's Hermite interpolant."""

    def __init__(self, extras: LoopExtras, t: Tensor, y: Tensor) -> None:
        assert extras.events is not None
        self.extras, self.events = extras, extras.events
        B = y.shape[0]
        self.g_prev = self.events.values(t, y.detach(), None)
        self.hit = torch.zeros(B, dtype=torch.bool, device=y.device)
        self.t_e = torch.full((B,), float("nan"), dtype=torch.float64, device=y.device)
        self.comp = torch.full((B,), -1, dtype=torch.int64, device=y.device)
        self.y_e = torch.zeros_like(y)

    def step(
        self, t, t1, h, y, y1, f0, field: _Field, acc, upto, t_fwd, direction, idx: Optional[Tensor] = None, t1_f=None
    ):
        """(hit [n] or None, upto, f1 or None) after the step of the rows ``idx`` (all: None):
        rows whose event lies in it stop there, their outputs reached only up to the event;
        f(t1, y1) is evaluated when some row crosses."""
        sub = (lambda x: x) if idx is None else (lambda x: x.index_select(0, idx))
        g_prev = sub(self.g_prev)
        g1 = self.events.values(t1, y1.detach(), idx)
        cross = self.events.crossings(g_prev, g1) & acc.unsqueeze(1)
        hit, f1 = None, None
        if bool(cross.any()):
            f1 = field(t1 if t1_f is None else t1_f, y1, idx)  # the Hermite interpolant needs f(t1, y1)
            h_safe = torch.where(h == 0, torch.ones_like(h), h)
            yd, y1d, f0d, f1d = y.detach(), y1.detach(), f0.detach(), f1.detach()

            def dense(c: Tensor) -> Tensor:
                with torch.no_grad():
                    val = _hermite(yd, y1d, f0d, f1d, (c - t) / h_safe, h)
                    return torch.where(_rows(c == t1, yd), y1d, val)

            with torch.no_grad():
                hit, t_e, comp = self.events.locate(cross, g_prev, g1, t, t1, dense, idx)
            hit = hit & (t_e * direction <= t_fwd[:, -1])  # a root past the row's last time is outside its solve
            before = torch.searchsorted(t_fwd, (t_e * direction).unsqueeze(1), right=False).squeeze(1)
            upto = torch.where(hit, before, upto)
            y_e = _hermite(y, y1, f0, f1, (t_e - t) / h_safe, h)
            y_e = torch.where(_rows(t_e == t1, y_e), y1, y_e)
            self.y_e = _put(self.y_e, torch.where(_rows(hit, y_e), y_e, sub(self.y_e)), idx)
            self.t_e = _put(self.t_e, torch.where(hit, t_e, sub(self.t_e)), idx)
            self.comp = _put(self.comp, torch.where(hit, comp, sub(self.comp)), idx)
            self.hit = _put(self.hit, sub(self.hit) | hit, idx)
        self.g_prev = _put(self.g_prev, torch.where(acc.unsqueeze(1), g1, g_prev), idx)
        return hit, upto, f1

    def finish(self) -> None:
        ex = self.extras
        ex.event_hit, ex.event_t, ex.event_y, ex.event_component = self.hit, self.t_e, self.y_e, self.comp
