"""The continuous adjoint with per-sample steps (Chen et al. 2018, seed 003; seminorm: Kidger et al. 2021).

Every row b of the batch solves its own augmented system backwards from its last output time,

    dy_b/dt = f_b(t, y_b),   da_b/dt = -a_b^T ∂f_b/∂y,   dg/dt = -sum_b a_b^T ∂f_b/∂θ,

with its own steps: the row's error norm is the RMS over (y_b, a_b) (the seminorm: the
parameter gradient, summed over the rows, is left out, as `OptimizeDiscretize(seminorm=True)`
leaves it out for one sample). At each of the row's output times the state restarts from the
stored forward value and a_b jumps by dL/dy_b(t_i); steps land on the output times, and the
first backward step of a row is the one its forward solve proposed next (as the shared-step
adjoint does). A row's parameter-gradient increment of an accepted step is the quadrature
h_b sum_i b_i (-a_bi^T ∂f_b/∂θ (t_bi, y_bi)); all rows' increments of one step are one
vector-Jacobian product per stage with the cotangent -a_bi b_i h_b (zero for rows that
rejected the step), taken once the step's acceptance is known.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, List, Optional, Tuple, Union

import torch
from torch import Tensor

from ..solvers.implicit import ImplicitRK
from ..solvers.per_sample import LoopExtras, PerSample, SampleCounts
from ..solvers.per_sample_loop import integrate_per_sample
from ..solvers.per_sample_norm import SampleNorm
from ..solvers.solution import SolverStats
from ..solvers.stepping import Adaptive
from ..solvers.tableau import ButcherTableau
from .per_sample_implicit_adjoint import implicit_adjoint


def per_sample_adjoint(cfg, func: Callable) -> PerSampleAdjointLoop:
    """The per-sample loop for ``OptimizeDiscretize`` options ``cfg``, checked: the seminorm is
    required (the parameter gradient is summed over the rows, so it cannot enter a row's norm),
    the backward method must be an adaptive Runge-Kutta method (implicit after an implicit forward
    solve, explicit after an explicit one) and its step Adaptive."""
    from ..solvers.methods import get_method

    if not cfg.seminorm:
        raise ValueError(
            "per_sample=True with OptimizeDiscretize() needs seminorm=True: the parameter gradient is "
            "summed over the samples, so it cannot enter each sample's own error norm; pass "
            "OptimizeDiscretize(seminorm=True)"
        )
    back_tab = None
    if cfg.method is not None:
        back_tab = get_method(cfg.method)
        if not isinstance(back_tab, (ButcherTableau, ImplicitRK)) or not back_tab.adaptive:
            raise ValueError(
                f"per_sample=True with OptimizeDiscretize(method={cfg.method!r}): the backward solve needs an "
                "adaptive Runge-Kutta method (explicit: dopri5, tsit5, bosh3, ...; implicit: radauIIA5, sdirk2, ...)"
            )
    if cfg.step is not None and not isinstance(cfg.step, Adaptive):
        raise ValueError(
            f"per_sample=True with OptimizeDiscretize(step={type(cfg.step).__name__}(...)): the backward solve "
            "steps per sample, give step=Adaptive(...) or leave it out"
        )
    if cfg.step is not None and (cfg.step.step_t or cfg.step.jump_t or cfg.step.weights is not None or cfg.step.norm):
        raise ValueError(
            "per_sample=True with OptimizeDiscretize(step=Adaptive(step_t, jump_t, weights, norm)) is not supported"
        )
    return PerSampleAdjointLoop(cfg.resolve_params(func), back_tab, cfg.step)


class PerSampleAdjointLoop:
    """`integrate_per_sample` with continuous-adjoint gradients (see the module docstring):
    called as the loop, (tab, func, y0, t_out, step, options, extras) -> (ys, counts, calls).
    ``params``: the tensors to differentiate; ``back_tab`` / ``back_step``: the backward
    solver (default: the forward's). ``stats``, when set by the caller, receives the backward
    solve's batched evaluations (nfe_backward: of the augmented field and of the parameter
    VJPs) and sample-steps (steps_backward)."""

    def __init__(
        self,
        params: Tuple[Tensor, ...],
        back_tab: Optional[Union[ButcherTableau, ImplicitRK]] = None,
        back_step: Optional[Adaptive] = None,
    ) -> None:
        self.params, self.back_tab, self.back_step = params, back_tab, back_step
        self.stats: Optional[SolverStats] = None

    def __call__(
        self,
        tab: Union[ButcherTableau, ImplicitRK],
        func: Callable,
        y0: Tensor,
        t_out: Tensor,
        step: Adaptive,
        options: PerSample,
        extras: Optional[LoopExtras] = None,
    ) -> Tuple[Tensor, SampleCounts, int]:
        if isinstance(tab, ImplicitRK):
            return implicit_adjoint(self, tab, func, y0, t_out, step, options, extras)
        if extras is not None and extras.events is not None:
            raise ValueError("per_sample=True does not support events with OptimizeDiscretize() yet")
        if self.back_tab is not None and not isinstance(self.back_tab, ButcherTableau):
            raise ValueError(
                f"per_sample=True with the explicit method {tab.name!r} and OptimizeDiscretize(method="
                f"{self.back_tab.name!r}): the backward solve integrates y backwards too, which needs an explicit "
                "method here; use an implicit forward method for an implicit backward solve"
            )
        box: List = []
        ys = _PerSampleAdjoint.apply(self, (tab, func, t_out, step, options, box), y0, *self.params)
        counts, calls = box
        return ys, counts, calls


class _PerSampleAdjoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx, loop: PerSampleAdjointLoop, run: tuple, y0: Tensor, *params: Tensor) -> Tensor:
        tab, func, t_out, step, options, box = run
        extras = LoopExtras()
        with torch.no_grad():
            ys, counts, calls = integrate_per_sample(tab, func, y0, t_out, step, options, extras)
        box.extend([counts, calls])
        ctx.loop, ctx.run, ctx.h_next = loop, run, extras.h_next
        ctx.save_for_backward(ys, *params)
        return ys

    @staticmethod
    def backward(ctx, grad_ys: Tensor):
        ys, *params_list = ctx.saved_tensors
        params = tuple(params_list)
        loop: PerSampleAdjointLoop = ctx.loop
        tab, func, t_out, step, options, _ = ctx.run
        back_tab = loop.back_tab or tab
        assert isinstance(back_tab, ButcherTableau)  # checked in PerSampleAdjointLoop.__call__
        back_step = loop.back_step or step
        if back_step.weights is not None:  # the forward weights on y and on its adjoint a (as the shared adjoint)
            w = SampleNorm(back_step, ys[0]).weights
            assert w is not None
            w2 = torch.cat([w, w], dim=1)
            back_step = replace(back_step, weights=w2[0] if w2.shape[0] == 1 else w2)
        T, B = ys.shape[0], ys.shape[1]
        row_shape = ys.shape[2:]
        n = ys[0, 0].numel()
        dtype = ys.dtype
        with_rows = options.compact > 0
        all_rows = torch.arange(B, device=ys.device)

        def field(tt: Tensor, y: Tensor, rows: Optional[Tensor]) -> Tensor:
            tt = tt.to(dtype)
            return func(tt, y, all_rows if rows is None else rows) if with_rows else func(tt, y)

        def aug_f(tt: Tensor, z: Tensor, rows: Optional[Tensor] = None) -> Tensor:
            """(f, -a^T df/dy) of every row, (y, a) flat per row."""
            m = z.shape[0]
            a = z[:, n:].reshape(m, *row_shape)
            with torch.enable_grad():
                y_ = z[:, :n].reshape(m, *row_shape).detach().requires_grad_(True)
                fy = field(tt, y_, rows)
                vjp = torch.autograd.grad(fy, y_, -a, allow_unused=True)[0] if fy.requires_grad else None
            vjp = torch.zeros_like(a) if vjp is None else vjp
            return torch.cat([fy.detach().reshape(m, n), vjp.reshape(m, n)], dim=1)

        g_acc = [torch.zeros_like(p) for p in params]
        param_calls = [0]
        weights = [(i, float(b)) for i, b in enumerate(back_tab.b) if b != 0.0]

        def on_step(stage_t: List[Tensor], inputs: List[Tensor], h: Tensor, acc: Tensor, rows: Optional[Tensor]):
            """The parameter-gradient increment of this step's accepted rows: one VJP per stage."""
            if not params or not bool(acc.any()):
                return
            m = inputs[0].shape[0]
            hw = torch.where(acc, h, torch.zeros_like(h)).to(dtype)
            for i, b_i in weights:
                z = inputs[i].detach()
                a = z[:, n:].reshape(m, *row_shape)
                cot = -a * (b_i * hw).reshape(-1, *([1] * len(row_shape)))
                param_calls[0] += 1
                with torch.enable_grad():
                    fy = field(stage_t[i], z[:, :n].reshape(m, *row_shape), rows)
                    if not fy.requires_grad:
                        return
                    got = torch.autograd.grad(fy, params, cot, allow_unused=True)
                for k, gk in enumerate(got):
                    if gk is not None:
                        g_acc[k] = g_acc[k] + gk

        flat_ys = ys.detach().reshape(T, B, n)
        flat_grads = grad_ys.reshape(T, B, n)

        def jump(j: Tensor, mask: Tensor, z: Tensor, rows: Optional[Tensor]) -> Tensor:
            """At a row's output time (backward index j): y restarts from the forward solution,
            a jumps by dL/dy there."""
            r = all_rows if rows is None else rows
            i = T - 1 - j.clamp(min=0, max=T - 1)
            restarted = torch.cat([flat_ys[i, r], z[:, n:] + flat_grads[i, r]], dim=1)
            return torch.where(mask.unsqueeze(1), restarted, z)

        z0 = torch.cat([flat_ys[-1], flat_grads[-1]], dim=1)
        extras = LoopExtras(h0=ctx.h_next, land_on_outputs=True, jump=jump, on_step=on_step)
        with torch.no_grad():
            outs, counts, calls = integrate_per_sample(back_tab, aug_f, z0, t_out.flip(1), back_step, options, extras)
        if loop.stats is not None:
            loop.stats.nfe_backward += calls + param_calls[0]
            loop.stats.steps_backward += int(counts.steps.sum())
        a0 = outs[-1][:, n:] + flat_grads[0] if T > 1 else flat_grads[0]
        return (None, None, a0.reshape(ys.shape[1:])) + tuple(g_acc)
