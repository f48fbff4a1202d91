"""The per-sample continuous adjoint of an implicit solve: y from the forward steps, never integrated backwards.

Backwards in time dy/dt = f is as unstable as the forward problem is stiff, so (as the shared-step
`interpolated_adjoint` does, Kim et al. 2021) only the adjoint is integrated backwards, every row
b with its own implicit steps:
    da_b/dt = -a_b^T ∂f_b/∂y (t, y_b(t)),     dg/dt = -sum_b a_b^T ∂f_b/∂θ (t, y_b(t)),
with y_b(t) the cubic Hermite interpolant of row b's accepted forward steps (kept while the
forward solve runs, f at both ends of each step). Newton uses each row's exact Jacobian -J_b^T.
Steps land on the row's output times, where a_b jumps by dL/dy_b(t_i); the error norm is the
RMS over a_b (the seminorm: g, summed over the rows, is left out), and a row's parameter
gradient of an accepted step is the quadrature h_b sum_i b_i (-a_bi^T ∂f_b/∂θ (t_bi, y_b(t_bi)))
at its stage values a_bi, which is what integrating g with the method gives (its right side does
not depend on g).
"""

from __future__ import annotations

from typing import Callable, List, Optional, Tuple

import torch
from torch import Tensor

from ..solvers.implicit import ImplicitRK, jacobian_blocks
from ..solvers.per_sample import LoopExtras, PerSample, SampleCounts, _rows
from ..solvers.per_sample_implicit import _hermite
from ..solvers.per_sample_implicit_loop import integrate_implicit_per_sample
from ..solvers.stepping import Adaptive


class ForwardSteps:
    """Every row's accepted forward steps (``record`` of the implicit loop), then its cubic
    Hermite interpolant y_b(t) (`at`)."""

    def __init__(self) -> None:
        self.parts: List[Tuple[Tensor, ...]] = []

    def record(self, t, y, f0, t1, y1, acc, rows: Optional[Tensor]) -> None:
        """Keeps the accepted rows' steps (rows: their batch indices; None: all)."""
        keep = acc.nonzero().reshape(-1)
        if keep.numel():
            r = torch.arange(t.shape[0], device=t.device) if rows is None else rows
            sel = lambda x: x.detach().index_select(0, keep)  # noqa: E731
            self.parts.append((r.index_select(0, keep), sel(t), sel(y), sel(f0), sel(t1), sel(y1)))

    def build(self, f: Callable[[Tensor, Tensor], Tensor], batch: int, direction: Tensor) -> None:
        """Padded per-row nodes: times [B, K+1] (times the row's direction: increasing, +inf
        past its end), states and derivatives [B, K+1, n]; f(t, y) on all rows gives f at the
        rows' ends (the end of each row's last accepted step)."""
        rows = torch.cat([p[0] for p in self.parts])
        ts, ys, fs, t1s, y1s = (torch.cat([p[i] for p in self.parts]) for i in range(1, 6))
        order = torch.sort(rows, stable=True).indices  # each row's steps in the order taken
        rows, ts, ys, fs, t1s, y1s = (x[order] for x in (rows, ts, ys, fs, t1s, y1s))
        count = torch.bincount(rows, minlength=batch)
        start = torch.cumsum(count, 0) - count
        pos = torch.arange(rows.shape[0], device=rows.device) - start[rows]
        k = int(count.max()) + 1
        dev, n, shape = ts.device, ys[0].numel(), ys.shape[1:]
        self.t = torch.full((batch, k), float("inf"), dtype=torch.float64, device=dev)
        self.y = torch.zeros(batch, k, n, dtype=ys.dtype, device=dev)
        self.f = torch.zeros(batch, k, n, dtype=ys.dtype, device=dev)
        self.t[rows, pos] = ts * direction[rows]
        self.y[rows, pos], self.f[rows, pos] = ys.reshape(-1, n), fs.reshape(-1, n)
        last = start + count - 1
        t_end, y_end = t1s[last], y1s[last]
        all_rows = torch.arange(batch, device=dev)
        self.t[all_rows, count] = t_end * direction
        self.y[all_rows, count] = y_end.reshape(batch, n)
        with torch.no_grad():
            self.f[all_rows, count] = f(t_end, y_end).reshape(batch, n)
        self.count, self.direction, self.shape = count, direction, shape
        self.parts = []

    def at(self, tq: Tensor, rows: Tensor) -> Tensor:
        """y_b(tq_b) of the rows ``rows`` (float64 times [m]) -> [m, ...]."""
        tq, d = tq.to(torch.float64), self.direction[rows]
        t_rows = self.t.index_select(0, rows)
        k = torch.searchsorted(t_rows, (tq * d).unsqueeze(1), right=True).squeeze(1) - 1
        k = torch.minimum(k.clamp_min(0), self.count[rows] - 1)
        ta, tb = t_rows.gather(1, k.unsqueeze(1)).squeeze(1), t_rows.gather(1, (k + 1).unsqueeze(1)).squeeze(1)
        pick = lambda x, j: x[rows, j]  # noqa: E731
        h = (tb - ta) * d
        theta = (tq * d - ta) / (tb - ta)
        y = _hermite(pick(self.y, k), pick(self.y, k + 1), pick(self.f, k), pick(self.f, k + 1), theta, h)
        return y.reshape(-1, *self.shape)


def implicit_adjoint(
    loop,
    method: ImplicitRK,
    func: Callable,
    y0: Tensor,
    t_out: Tensor,
    step: Adaptive,
    options: PerSample,
    extras: Optional[LoopExtras],
) -> Tuple[Tensor, SampleCounts, int]:
    """`per_sample_adjoint.PerSampleAdjointLoop` for an implicit forward method (same call and results)."""
    if extras is not None and extras.events is not None:
        raise ValueError("per_sample=True does not support events with OptimizeDiscretize() yet")
    if step.jump_t or options.jump_t is not None:
        raise ValueError(
            "per_sample=True with an implicit method, OptimizeDiscretize() and jump_t is not supported (the "
            "adjoint's y(t) interpolates the forward steps, which needs f on both sides of each jump); "
            "use DiscretizeOptimize() or an explicit method"
        )
    back = loop.back_tab or method
    if not isinstance(back, ImplicitRK):
        raise ValueError(
            f"per_sample=True with the implicit method {method.name!r} and OptimizeDiscretize(method="
            f"{getattr(back, 'name', back)!r}): the backward solve of a stiff problem needs an adaptive implicit "
            "method too (radauIIA5, sdirk2, ...); leave method out to use the forward one"
        )
    box: List = []
    ys = _ImplicitAdjoint.apply(loop, (method, func, t_out, step, options, box), y0, *loop.params)
    counts, calls = box
    return ys, counts, calls


class _ImplicitAdjoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx, loop, run: tuple, y0: Tensor, *params: Tensor) -> Tensor:
        method, func, t_out, step, options, box = run
        fwd = ForwardSteps()
        extras = LoopExtras(record=fwd.record)
        with torch.no_grad():
            ys, counts, calls = integrate_implicit_per_sample(method, func, y0, t_out, step, options, extras)
        box.extend([counts, calls])
        ctx.loop, ctx.run, ctx.h_next, ctx.fwd = loop, run, extras.h_next, fwd
        ctx.save_for_backward(ys, *params)
        return ys

    @staticmethod
    def backward(ctx, grad_ys: Tensor):
        ys, *params_list = ctx.saved_tensors
        params = tuple(params_list)
        loop = ctx.loop
        method, func, t_out, step, options, _ = ctx.run
        back, back_step = loop.back_tab or method, loop.back_step or step
        T, B = ys.shape[0], ys.shape[1]
        dtype, with_rows = ys.dtype, options.compact > 0
        all_rows = torch.arange(B, device=ys.device)
        if T == 1:
            return (None, None, grad_ys[0]) + tuple(torch.zeros_like(p) for p in params)

        def field(tt: Tensor, y: Tensor, rows: Tensor) -> Tensor:
            tt = tt.to(dtype)
            return func(tt, y, rows) if with_rows else func(tt, y)

        direction = torch.sign(t_out[:, -1] - t_out[:, 0])
        fwd: ForwardSteps = ctx.fwd
        fwd.build(lambda tt, y: field(tt, y, all_rows), B, direction)

        seen: dict = {}

        def y_at(tt: Tensor, r: Tensor) -> Tensor:
            """fwd.at, kept for the times of the last few calls (Newton's iterations reuse the stage times)."""
            hit = seen.get((id(tt), id(r)))
            if hit is not None and hit[0] is tt and hit[1] is r:
                return hit[2]
            if len(seen) > 32:
                seen.clear()
            y = fwd.at(tt, r)
            seen[(id(tt), id(r))] = (tt, r, y)  # the tensors themselves kept: ids stay theirs
            return y

        def aug(tt: Tensor, a: Tensor, rows: Optional[Tensor] = None) -> Tensor:
            """-a^T ∂f/∂y at (t, y(t)) of every row."""
            r = all_rows if rows is None else rows
            with torch.enable_grad():
                y_ = y_at(tt, r).detach().requires_grad_(True)
                fy = field(tt, y_, r)
                vjp = torch.autograd.grad(fy, y_, -a, allow_unused=True)[0] if fy.requires_grad else None
            return torch.zeros_like(a) if vjp is None else vjp

        def jacobian(tt: Tensor, a: Tensor, rows: Optional[Tensor]) -> Tensor:
            r = all_rows if rows is None else rows
            j = jacobian_blocks(lambda t_, y_: field(t_, y_, r), tt, y_at(tt, r), True)
            return -j.transpose(1, 2)

        g_acc = [torch.zeros_like(p) for p in params]
        param_calls = [0]
        weights = [(i, float(b)) for i, b in enumerate(back.tableau.b) if b != 0.0]

        def on_step(stage_t: List[Tensor], stage_a: List[Tensor], h: Tensor, acc: Tensor, rows: Optional[Tensor]):
            """The parameter-gradient increment of this step's accepted rows: one VJP per stage."""
            if not params or not bool(acc.any()):
                return
            r = all_rows if rows is None else rows
            hw = torch.where(acc, h, torch.zeros_like(h)).to(dtype)
            for i, b_i in weights:
                cot = -stage_a[i].detach() * _rows(b_i * hw, stage_a[i])
                param_calls[0] += 1
                with torch.enable_grad():
                    fy = field(stage_t[i], y_at(stage_t[i], r), r)
                    if not fy.requires_grad:
                        return
                    got = torch.autograd.grad(fy, params, cot, allow_unused=True)
                for k, gk in enumerate(got):
                    if gk is not None:
                        g_acc[k] = g_acc[k] + gk

        def jump(j: Tensor, mask: Tensor, a: Tensor, rows: Optional[Tensor]) -> Tensor:
            """At a row's output time (backward index j): a jumps by dL/dy there."""
            r = all_rows if rows is None else rows
            i = T - 1 - j.clamp(min=0, max=T - 1)
            return torch.where(_rows(mask, a), a + grad_ys[i, r], a)

        extras = LoopExtras(h0=ctx.h_next, land_on_outputs=True, jump=jump, on_step=on_step, jacobian=jacobian)
        with torch.no_grad():
            outs, counts, calls = integrate_implicit_per_sample(
                back, aug, grad_ys[-1], t_out.flip(1), back_step, options, extras
            )
        if loop.stats is not None:
            loop.stats.nfe_backward += calls + param_calls[0]
            loop.stats.steps_backward += int(counts.steps.sum())
        return (None, None, outs[-1] + grad_ys[0]) + tuple(g_acc)
