"""Running a `Problem` through the loop that fits its method and step: explicit RK on a fixed
grid (eager or compiled), on an explicit grid, adaptive (eager or compiled attempts), or a
method object's own integrator (Adams, implicit RK, scipy). The gradient modes call this."""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import Tensor

from . import tensor_loop
from .compiled import (
    CompiledAttempt,
    compile_key,
    integrate_fixed_compiled,
    integrate_grid_compiled,
    scan_compilable,
    scan_stepper,
)
from .compiled_newton import with_compiled_newton
from .grid import GridDiff, grid_points, integrate_grid
from .integrate import integrate
from .loop import fixed_grid, integrate_adaptive, integrate_fixed
from .problem import Problem
from .solver import ExplicitRK
from .stepping import Adaptive, FixedStep, initial_step
from .symplectic import Leapfrog, halves
from .tableau import ButcherTableau
from .times import StepTimes


def run_plain(
    problem: Problem, y0: Optional[Tensor] = None, h0: Optional[float] = None, differentiable_times: bool = False
) -> Tuple[List[Tensor], Optional[float]]:
    """Solve from y0 (default: the problem's) through all times; returns the states at
    every time in t (y0 first) and, for adaptive steps, the next proposed step size."""
    y0 = problem.y0 if y0 is None else y0
    if len(problem.t_values) == 1:
        return [y0], h0
    t_tensor = problem.t if differentiable_times else None
    if problem.compile and scan_compilable(problem.method):
        return [y0] + _scan_compiled(problem, y0, t_tensor), None
    if not isinstance(problem.method, ButcherTableau):
        method = with_compiled_newton(problem, y0) if problem.compile else problem.method
        return [y0] + integrate(
            method, problem.func, y0, problem.t_values, problem.step, problem.norm, problem.stats,
            problem.hooks, t_tensor,
        ), None  # fmt: skip
    if isinstance(problem.step, FixedStep) and problem.step.grid is not None:
        points = grid_points(problem.step, problem.t_values)
        return [y0] + integrate_grid(
            problem.method,
            problem.func,
            y0,
            points,
            problem.t_values,
            problem.step.interp,
            problem.stats,
            problem.hooks,
            diff=GridDiff.make(problem.step, problem.t_values, t_tensor, points),
        ), None
    if isinstance(problem.step, FixedStep):
        grid = fixed_grid(
            problem.method,
            problem.t_values,
            problem.step.substeps(problem.t_values),
            y0.dtype,
            y0.device,
            t_tensor,
            perturb=problem.step.perturb,
        )
        if problem.compile:
            key = compile_key("forward", problem.method, problem.field, y0)
            return [y0] + integrate_fixed_compiled(
                problem.method, problem.raw_func(), y0, grid, problem.stats, key
            ), None
        outs, _ = integrate_fixed(problem.method, problem.func, y0, grid, problem.stats, hooks=problem.hooks)
        return [y0] + outs, None
    assert problem.norm is not None
    if (
        problem.compile
        and not differentiable_times
        and not torch.is_grad_enabled()
        and tensor_loop.supported(problem.method, problem.step, y0, land_on_outputs=False)
    ):
        # No gradients through the loop (e.g. the adjoint's forward solve): one compiled program.
        f = problem.raw_func()
        k0 = None
        if h0 is None:
            h0, k0 = _first_step(problem, f, y0)
        key = compile_key("forward", problem.method, problem.field, y0)
        t64 = torch.tensor(problem.t_values, dtype=torch.float64, device=y0.device)
        ys, h_next = tensor_loop.integrate_adaptive_tensor(
            problem.method, f, y0, t64, problem.step, problem.norm, problem.stats, h0, key, k0=k0
        )
        return [y0] + list(ys.unbind(0)), h_next
    attempt = None
    if problem.compile:
        attempt = CompiledAttempt(
            problem.method,
            problem.raw_func(),
            problem.norm,
            problem.stats.count_evals,
            compile_key("forward", problem.method, problem.field, y0),
        )
    outs, h = integrate_adaptive(
        ExplicitRK(problem.method, attempt),
        problem.func,
        y0,
        problem.t_values,
        problem.step,
        problem.norm,
        problem.stats,
        h0=h0,
        t_tensor=t_tensor,
        hooks=problem.hooks,
    )
    return [y0] + outs, h


def _scan_compiled(problem: Problem, y0: Tensor, t_tensor: Optional[Tensor]) -> List[Tensor]:
    """Leapfrog or explicit Adams on a fixed grid as one compiled scan
    (`compiled.integrate_grid_compiled` with the method's `compiled_grid` stepper)."""
    assert isinstance(problem.step, FixedStep)
    if isinstance(problem.method, Leapfrog):
        halves(y0)  # a clear error for a state that is not (q, p)
    grid = fixed_grid(
        problem.method,  # type: ignore[arg-type]  # its stage times (c) are all a grid reads
        problem.t_values,
        problem.step.substeps(problem.t_values),
        y0.dtype,
        y0.device,
        t_tensor,
    )
    key = compile_key("forward", problem.method, problem.field, y0)
    stepper = scan_stepper(problem.method)
    return integrate_grid_compiled(stepper, problem.raw_func(), y0, grid, problem.stats, key)


def _first_step(problem: Problem, f, y0: Tensor) -> Tuple[float, Optional[Tensor]]:
    """The initial step as the eager loop chooses it and f(t0, y0) if evaluated: the user's
    first_step, else Hairer's algorithm (two evaluations, counted)."""
    step = problem.step
    assert isinstance(step, Adaptive) and problem.norm is not None
    if step.first_step is not None:
        return step.first_step, None
    t0 = problem.t_values[0]
    direction = 1.0 if problem.t_values[-1] >= t0 else -1.0
    times = StepTimes(y0.dtype, y0.device, t0=t0)
    k1 = f(times.one(t0), y0)
    problem.stats.count_evals(2)
    return initial_step(f, t0, y0, k1, problem.method.order, problem.norm, direction, times.one), k1
