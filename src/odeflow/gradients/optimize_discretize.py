"""Optimize-discretize: the continuous adjoint method (Pontryagin; Chen et al. 2018, seed 003).

Backwards from T to t0 it solves the augmented system
    dy/dt = f(t, y),   da/dt = -a^T df/dy,   dg/dt = -a^T df/dtheta,
with a(T) = dL/dy(T) and g(T) = 0, so that g(t0) = dL/dtheta and a(t0) = dL/dy0.
At every output time t_i the state is reset to the stored forward value and dL/dy(t_i) is
added to a; the step size carries over between output times instead of being chosen anew
(the first backward step is the one the forward solve proposed next).
Time gradients: dL/dt_i = dL/dy(t_i) . f(t_i, y(t_i)) for i >= 1 and dL/dt0 = -a(t0+) . f(t0, y0),
with a(t0+) the adjoint before the direct term dL/dy(t0) is added.
Memory is independent of the number of steps: only the outputs are stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union, cast

import torch
from torch import Tensor, nn

from ..solvers import tensor_loop
from ..solvers.compiled import CompiledAttempt, compile_key, counted, integrate_fixed_compiled
from ..solvers.grid import grid_points
from ..solvers.hooks import StepHooks
from ..solvers.integrate import integrate
from ..solvers.loop import fixed_grid, integrate_adaptive, integrate_fixed
from ..solvers.methods import get_method
from ..solvers.plain_run import run_plain
from ..solvers.problem import Problem
from ..solvers.solution import SolverStats
from ..solvers.solver import ExplicitRK
from ..solvers.state import ErrorNorm, StatePacker, packed_func
from ..solvers.stepping import Adaptive, FixedStep
from ..solvers.tableau import ButcherTableau  # noqa: F401 (isinstance checks)
from ..solvers.times import perturb_stage_times, real_dtype
from .interpolated_adjoint import interval_adjoint


@dataclass(frozen=True)
class OptimizeDiscretize:
    """Continuous adjoint gradients.

    params: tensors to differentiate (default: the parameters of func when it is an
    nn.Module; a plain function must list them, or pass ``params=()``).
    method / step: solver for the backward system (default: those of the forward solve).
    seminorm: leave the parameter-gradient states out of the error norm (Kidger et al. 2021).
    options / from_options: the drop-in's torchdiffeq-style adjoint options, shown as
    ``ys.grad_fn.adjoint_options`` (as torchdiffeq does), and the function that turns them into
    (method, step) for the backward solve; when the dict is changed before backward() (e.g. its
    'norm' replaced), the backward solve follows the changed options.
    """

    params: Optional[Sequence[Tensor]] = None
    method: Optional[Union[str, ButcherTableau]] = None
    step: Optional[Union[FixedStep, Adaptive]] = None
    seminorm: bool = False
    options: Optional[Dict[str, Any]] = field(default=None, compare=False, hash=False)
    from_options: Optional[Callable[[Dict[str, Any]], Tuple[Any, Any]]] = field(default=None, compare=False, hash=False)

    def resolve_params(self, func: Callable) -> Tuple[Tensor, ...]:
        if self.params is not None:
            params = tuple(self.params)
        elif isinstance(func, nn.Module):
            params = tuple(p for p in func.parameters() if p.requires_grad)
        else:
            raise TypeError(
                "optimize-discretize needs to know the parameters of the vector field: func is a "
                f"{type(func).__name__}, not an nn.Module; pass OptimizeDiscretize(params=[...]) "
                "(odeint_adjoint(adjoint_params=...)), or params=() if it has none"
            )
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"params[{i}] is a {type(p).__name__}, expected a tensor")
        # Tensors that do not require grad get no gradient: left out of the backward solve.
        return tuple(p for p in params if p.requires_grad)

    def run(self, problem: Problem) -> Tensor:
        """The states at every output time, [len(t), *state], straight from the adjoint's
        autograd node (its ``grad_fn`` carries ``adjoint_options``)."""
        if not getattr(problem.method, "adjoint", True):
            raise ValueError(
                f"method {problem.method.name!r} does not run the continuous adjoint (its backward state is not a "
                "state it can step); use DiscretizeOptimize() (gradient=None) with it"
            )
        params = self.resolve_params(problem.field)
        return _Adjoint.apply(problem, self, problem.y0, problem.t, *params)


def _adjoint_norm(problem: Problem, step: Adaptive, aug_packer: StatePacker, seminorm: bool) -> ErrorNorm:
    """Error norm of the backward state (y, a, g_params).

    Per-component tolerances and weights of the forward state apply element for element to
    y and to its adjoint a (a component left out forwards, e.g. an RNODE integral, is left out
    backwards too); the parameter gradients get the mean tolerance, and weight 0 with a seminorm.
    """
    n_y, n_g = sum(problem.packer.numels), sum(aug_packer.numels[2:])

    def expand(value):
        v = problem.packer.per_component(value, "tolerance")
        if not isinstance(v, Tensor):
            return v  # one float for every element
        return torch.cat([v, v, torch.full((n_g,), float(v.mean()), dtype=v.dtype, device=v.device)])

    rtol, atol = expand(step.rtol), expand(step.atol)
    if step.norm is not None:  # a user norm sees (y, a, *params), y and a flat
        return ErrorNorm(aug_packer, rtol, atol, fn=step.norm)
    fw = problem.packer.per_component(step.weights, "weights") if step.weights is not None else None
    if fw is None and not seminorm:
        return ErrorNorm(aug_packer, rtol, atol)
    ones = torch.ones(n_y, dtype=problem.packer.dtype, device=problem.packer.device)
    wy = fw if isinstance(fw, Tensor) else ones * (1.0 if fw is None else float(fw))
    wg = torch.full((n_g,), 0.0 if seminorm else 1.0, dtype=wy.dtype, device=wy.device)
    return ErrorNorm(aug_packer, rtol, atol, torch.cat([wy, wy, wg]))


class _Adjoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx, problem: Problem, cfg: OptimizeDiscretize, y0: Tensor, t: Tensor, *params: Tensor) -> Tensor:
        with torch.no_grad():
            ys, h_next = run_plain(problem, y0=y0)
            ys_t = torch.stack(ys)
        ctx.problem, ctx.cfg, ctx.h_next = problem, cfg, h_next
        ctx.adjoint_options = cfg.options
        if cfg.options is not None:
            ctx.options_seen = dict(cfg.options)
        ctx.save_for_backward(t, ys_t, *params)
        return ys_t

    @staticmethod
    def backward(ctx, grad_ys: Tensor):
        t, ys, *params = ctx.saved_tensors
        problem: Problem = ctx.problem
        cfg: OptimizeDiscretize = ctx.cfg
        tab = get_method(cfg.method) if cfg.method is not None else problem.method
        step = cfg.step or problem.step
        if cfg.from_options is not None and _changed(ctx.options_seen, ctx.adjoint_options):
            method, step = cfg.from_options(ctx.adjoint_options)
            tab = get_method(method)
        solve = _BackwardSolve(problem, tab, step, cfg.seminorm, ys, grad_ys, tuple(params), ctx.h_next)
        n = len(problem.t_values)
        want_t = ctx.needs_input_grad[3]
        grad_t = torch.zeros(n, dtype=ys.dtype, device=ys.device) if want_t else None
        if grad_t is not None:
            for i in range(n - 1, 0, -1):
                grad_t[i] = (grad_ys[i] * solve.f(solve.time_at(i, i - 1), ys[i].detach())).sum()
        with torch.no_grad():
            state = solve.run()
        _, a, *g_list = solve.aug_packer.unpack(state)
        g = tuple(g_list)
        if grad_t is not None:
            # y(t0) = y0 whatever t0 is, so the direct dL/dy(t0) term does not enter here.
            grad_t[0] = -(a * solve.f(solve.time_at(0, 1), ys[0].detach())).sum()
            grad_t = grad_t.to(t.dtype)
        if n > 1:
            a = a + grad_ys[0]
        return (None, None, a, grad_t) + g


class _BackwardSolve:
    """The backward solve of the augmented state (y, a, g), kept packed flat: from T to t0 through
    every output time t_i, where y restarts from the stored forward value and a jumps by dL/dy(t_i).
    Routes by step control, not by method: fixed steps (and scipy) one solve per interval, adaptive
    steps one solve through every t_i (one compiled while_loop when it can, else the adaptive loop,
    for explicit and implicit steps alike); implicit methods both ways use the interpolated adjoint
    (y from the forward steps, never integrated backwards)."""

    def __init__(
        self,
        problem: Problem,
        tab: Any,
        step: Union[FixedStep, Adaptive],
        seminorm: bool,
        ys: Tensor,
        grad_ys: Tensor,
        params: Tuple[Tensor, ...],
        h_next: Optional[float],
    ) -> None:
        self.problem, self.tab, self.step, self.ys, self.grad_ys, self.params = problem, tab, step, ys, grad_ys, params
        self.stats = problem.stats
        self.flat_f = packed_func(problem.field, problem.packer)
        self.tvals = problem.t_values
        self.n = len(self.tvals)
        g = tuple(torch.zeros_like(p) for p in params)
        self.aug_packer = StatePacker((ys[-1], grad_ys[-1]) + g)
        aug_dynamics: Callable[..., Any] = self._aug_dynamics
        if problem.compile:
            aug_dynamics = functional_aug_dynamics(problem.field, problem.packer, params)
        self.aug_f = packed_func(aug_dynamics, self.aug_packer)
        self.norm = _adjoint_norm(problem, step, self.aug_packer, seminorm) if isinstance(step, Adaptive) else None
        # The backward solve starts from the step size the forward solve would have taken next
        # (no initial-step estimate, whose evaluations would cost two vector-Jacobian products).
        self.h = h_next
        self.counter = cast(SolverStats, _BackwardSteps(self.stats))  # duck-typed stats view
        self.key = compile_key("adjoint", tab, problem.field, ys[-1])
        self.ny = ys[0].numel()
        self.flat_ys, self.flat_grads = ys.reshape(self.n, self.ny), grad_ys.reshape(self.n, self.ny)
        self.state = self.aug_packer.pack((ys[-1], grad_ys[-1]) + g)
        self.perturb = isinstance(problem.step, FixedStep) and problem.step.perturb
        self.hooks = StepHooks.from_func(problem.field, self.aug_packer, suffix="_adjoint")

    def f(self, tt: Tensor, y: Tensor) -> Tensor:
        """The forward field on the flat state, counted as a backward evaluation."""
        self.stats.nfe_backward += 1
        return self.flat_f(tt, y)

    def _aug_dynamics(self, tt: Tensor, state: Tuple[Tensor, ...]) -> Tuple[Tensor, ...]:
        """(f, -a^T df/dy, -a^T df/dtheta) by one vector-Jacobian product (eager autograd)."""
        y, a, params = state[0], state[1], self.params
        with torch.enable_grad():
            y_ = y.detach().requires_grad_(True)
            fy = self.f(tt, y_)
            if fy.requires_grad:
                vjps = torch.autograd.grad(fy, (y_,) + params, -a, allow_unused=True)
            else:  # f depends on neither y nor the parameters
                vjps = (None,) * (1 + len(params))  # type: ignore[assignment]  # all-None grads
        return (fy.detach(), torch.zeros_like(y) if vjps[0] is None else vjps[0]) + tuple(
            torch.zeros_like(p) if g is None else g for p, g in zip(params, vjps[1:])
        )

    def time_at(self, i: int, toward: int) -> Tensor:
        """t_i, or with perturb the time one ulp from t_i toward t_toward (f may jump at t_i)."""
        ys, tvals = self.ys, self.tvals
        if not self.perturb:
            return torch.tensor(tvals[i], dtype=ys.dtype, device=ys.device)
        tt = torch.tensor([[tvals[i]]], dtype=torch.float64).to(ys.device, real_dtype(ys.dtype))
        return perturb_stage_times(tt, [0.0], 1.0 if tvals[toward] > tvals[i] else -1.0)[0, 0]

    def restart(self, i: int, out: Tensor) -> Tensor:
        """At t_i: y from the stored forward solution, a jumps by dL/dy(t_i)."""
        ny = self.ny
        return torch.cat([self.flat_ys[i], out[ny : 2 * ny] + self.flat_grads[i], out[2 * ny :]])

    def _next(self, i: int, out: Tensor) -> Tensor:
        """The state to go on from t_{i-1} with: restarted there, except at t0."""
        return self.restart(i - 1, out) if i > 1 else out

    def run(self) -> Tensor:
        """The packed state at t0, before the direct term dL/dy(t0)."""
        tab, problem, step = self.tab, self.problem, self.step
        if self.n == 1:
            return self.state  # nothing to integrate: dL/dy0 is the direct term alone
        if hasattr(tab, "tableau") and hasattr(problem.method, "tableau"):
            return self._implicit_both_ways()  # the interpolated adjoint: a different algorithm
        if isinstance(step, FixedStep) or not (isinstance(tab, ButcherTableau) or hasattr(tab, "step")):
            return self._per_interval(step)  # fixed steps, and scipy's methods (not steps)
        if (
            self.h is not None
            and problem.compile
            and tensor_loop.supported(tab, step, self.state, land_on_outputs=True)
        ):
            return self._compiled_adaptive(step)
        return self._adaptive(step)

    def _implicit_both_ways(self) -> Tensor:
        """Implicit forward and backward: y from the forward steps, never integrated backwards."""
        problem, tvals, ys = self.problem, self.tvals, self.ys
        y_shape = ys[0].shape
        flat_y = lambda tt, y: self.f(tt, y.view(y_shape)).reshape(-1)  # noqa: E731  (counted)
        a_cur, g_cur = self.grad_ys[-1].reshape(-1), tuple(torch.zeros_like(p) for p in self.params)
        for i in range(self.n - 1, 0, -1):
            grid = getattr(problem.step, "grid", None)
            fwd = problem.step if grid is None else interval_step(problem.step, tvals[i - 1], tvals[i])
            back = interval_step(self.step, tvals[i], tvals[i - 1])
            a_cur, g_cur = interval_adjoint(
                self.tab, fwd, problem.norm, back, flat_y, self.flat_ys[i - 1], self.flat_ys[i],
                tvals[i - 1], tvals[i], a_cur, g_cur, self.params, self.counter, self.hooks,
            )  # fmt: skip
            if i > 1:
                a_cur = a_cur + self.flat_grads[i - 1]
        return self.aug_packer.pack((ys[0], a_cur.view_as(ys[0])) + tuple(g_cur))

    def _per_interval(self, step) -> Tensor:
        """One solve per interval between output times: explicit RK on equal steps through the
        fixed-grid loop (compiled when asked), any other method and grid through
        `solvers.integrate` (the grid loop, or scipy)."""
        aug_f, state, ys = self.aug_f, self.state, self.ys
        if hasattr(self.tab, "tableau"):  # implicit backward steps: Newton needs the Jacobian
            aug_f = _with_adjoint_jacobian(aug_f, self.flat_f, self.ny, ys[0].shape)
        for i in range(self.n - 1, 0, -1):
            span = [self.tvals[i], self.tvals[i - 1]]
            on = interval_step(step, *span)
            if isinstance(self.tab, ButcherTableau) and isinstance(on, FixedStep) and on.grid is None:
                grid = fixed_grid(self.tab, span, on.substeps(span), ys.dtype, ys.device)
                if self.problem.compile:
                    outs = integrate_fixed_compiled(self.tab, aug_f, state, grid, self.counter, self.key)
                else:
                    outs, _ = integrate_fixed(self.tab, aug_f, state, grid, self.counter, hooks=self.hooks)
            else:
                outs = integrate(self.tab, aug_f, state, span, on, self.norm, self.counter, self.hooks)
            state = self._next(i, outs[-1])
        return state

    def _compiled_adaptive(self, step: Adaptive) -> Tensor:
        """The whole backward solve as one compiled program (see solvers/tensor_loop.py)."""
        assert self.norm is not None and self.h is not None
        ny = self.ny
        rev_ys, rev_grads = self.flat_ys.flip(0), self.flat_grads.flip(0)

        def jump_at(j: Tensor, out: Tensor) -> Tensor:
            """restart() at reversed output index j, with j a tensor (no host read)."""
            return torch.cat([_row(rev_ys, j), out[ny : 2 * ny] + _row(rev_grads, j), out[2 * ny :]])

        rev_t = torch.tensor(self.tvals[::-1], dtype=torch.float64, device=self.ys.device)
        outs_t, _ = tensor_loop.integrate_adaptive_tensor(
            self.tab, self.aug_f, self.state, rev_t, step, self.norm, self.counter, self.h, self.key,
            land_on_outputs=True, jump=jump_at,
        )  # fmt: skip
        return outs_t[-1]

    def _adaptive(self, step: Adaptive) -> Tensor:
        """One backward solve through all output times: steps land on each t_i, where the state
        restarts (no overshoot and interpolation back); each attempt compiled when asked."""
        assert self.norm is not None  # adaptive steps have one
        f_eager, solver = self.aug_f, self.tab
        if not isinstance(self.tab, ButcherTableau):  # implicit backward steps: Newton needs the Jacobian
            f_eager = _with_adjoint_jacobian(self.aug_f, self.flat_f, self.ny, self.ys[0].shape)
        elif self.problem.compile:
            f_eager = counted(self.aug_f, self.counter.count_evals)
            solver = ExplicitRK(
                self.tab, CompiledAttempt(self.tab, self.aug_f, self.norm, self.counter.count_evals, self.key)
            )
        n = self.n
        outs, _ = integrate_adaptive(
            solver, f_eager, self.state, self.tvals[::-1], step, self.norm, self.counter,
            h0=self.h, land_on_outputs=True, hooks=self.hooks, jump=lambda j, out: self.restart(n - 1 - j, out),
        )  # fmt: skip
        return outs[-1]


def _row(x: Tensor, j: Tensor) -> Tensor:
    """x[j] for a 0-d index tensor inside a compiled loop."""
    return x.index_select(0, j.reshape(1)).squeeze(0)


def interval_step(step, a: float, b: float):
    """The backward step control from t_i = a to t_{i-1} = b. A fixed step with perturb steps on
    the forward grid points of the interval, reversed (points computed anew backwards round
    differently, and a perturbed stage next to such a point can land on the forward one, where
    f jumps); an explicit grid (one for all intervals, e.g. from grid_constructor) gives its
    points between a and b."""
    if not isinstance(step, FixedStep) or (step.grid is None and not step.perturb):
        return step
    if step.grid is not None:
        lo, hi = min(a, b), max(a, b)
        inner = sorted((g for g in step.grid if lo < g < hi), reverse=a > b)
        pts = [a, *inner, b]
    else:
        pts = grid_points(step, [b, a])[::-1]
    return FixedStep(grid=tuple(pts), interp=step.interp, perturb=step.perturb)


def _changed(seen: Dict[str, Any], now: Optional[Dict[str, Any]]) -> bool:
    """Whether the adjoint options dict was changed after the forward solve (values compared by identity)."""
    return now is not None and (seen.keys() != now.keys() or any(now[k] is not v for k, v in seen.items()))


def functional_aug_dynamics(func: Callable, packer: StatePacker, params: Tuple[Tensor, ...]) -> Callable:
    """The augmented dynamics (f, -a^T df/dy, -a^T df/dtheta) through torch.func.vjp, which
    torch.compile can trace (torch.autograd.grad it cannot); the parameters enter by
    torch.func.functional_call, so they must be parameters of the nn.Module func."""
    names: List[str] = []
    if params:
        by_id = {id(p): name for name, p in func.named_parameters()} if isinstance(func, nn.Module) else {}
        missing = [i for i, p in enumerate(params) if id(p) not in by_id]
        if missing:
            raise ValueError(
                "compile=True with OptimizeDiscretize needs the adjoint parameters to be parameters of the "
                f"nn.Module vector field; params {missing} are not. Use compile=False for this func"
            )
        names = [by_id[id(p)] for p in params]

    def aug_dynamics(tt: Tensor, state: Tuple[Tensor, ...]) -> Tuple[Tensor, ...]:
        y, a = state[0], state[1]

        def field(y_: Tensor, *values: Tensor) -> Tensor:
            args = (tt, packer.unpack(y_))
            out = (
                torch.func.functional_call(cast(nn.Module, func), dict(zip(names, values)), args)
                if values
                else func(*args)
            )
            return packer.pack(out)

        fy, pull = torch.func.vjp(field, y, *params)[:2]
        return (fy,) + tuple(pull(-a))

    return aug_dynamics


def _with_adjoint_jacobian(aug_f: Callable, flat_f: Callable, ny: int, y_shape) -> Callable:
    """aug_f with the Jacobian used by implicit methods in the backward solve: d(f, -a^T df/dy)/d(y, a)
    approximated by blockdiag(J, -J^T) (the second-derivative coupling term is dropped, which
    only slows Newton's convergence); the parameter gradients have no Jacobian (newton_dims)."""

    def g(tt: Tensor, state: Tensor) -> Tensor:
        return aug_f(tt, state)

    def jacobian(tt: Tensor, state: Tensor) -> Tensor:
        from ..solvers.implicit import jacobian_blocks

        j = jacobian_blocks(flat_f, tt, state[:ny].detach().view(y_shape), False)[0]
        out = torch.zeros(2 * ny, 2 * ny, dtype=j.dtype, device=j.device)
        out[:ny, :ny], out[ny:, ny:] = j, -j.T
        return out

    g.jacobian, g.newton_dims = jacobian, 2 * ny  # type: ignore[attr-defined]  # read by the implicit solvers
    return g


class _BackwardSteps:
    """Stats view for the backward solve: evaluations go to nfe_backward, steps to steps_backward."""

    def __init__(self, stats: SolverStats) -> None:
        self._stats = stats
        self.nfe = 0

    def count_evals(self, n: int) -> None:
        self._stats.nfe_backward += n

    @property
    def steps(self) -> int:
        return self._stats.steps_backward

    @steps.setter
    def steps(self, v: int) -> None:
        self._stats.steps_backward = v

    accepted = 0
    rejected = 0
