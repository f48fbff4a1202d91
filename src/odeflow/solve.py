"""`odeflow.solve`: the object door into the solver core, with a choice of gradient."""
from __future__ import annotations

import logging
from typing import Callable, Optional, Sequence, Union

import torch
from torch import Tensor

from .gradients import DiscretizeOptimize, OptimizeDiscretize
from .solvers import compile_policy as policy_mod
from .solvers.compile_cache import Unfingerprintable, fingerprint
from .solvers.compile_policy import AutoCompile
from .solvers.errors import SolverError
from .solvers.problem import StepControl, capturing, make_problem
from .solvers.solution import Solution
from .solvers.state import State
from .solvers.tableau import ButcherTableau

Gradient = Union[DiscretizeOptimize, OptimizeDiscretize]
log = logging.getLogger(__name__)


def solve(func: Callable[[Tensor, State], State], y0: State, t: Union[Tensor, Sequence[float]],
          method: Union[str, ButcherTableau] = "dopri5", step: Optional[StepControl] = None,
          gradient: Optional[Gradient] = None, check_finite: bool = True,
          compile: Union[bool, str, AutoCompile] = False, events=None) -> Solution:
    """Solve dy/dt = func(t, y), y(t[0]) = y0, and return y at every time in t.

    Args:
        func: f(t, y) with t a 0-d tensor and y shaped like y0 (tensor or tuple of tensors).
        y0: initial state, any shape (batch dimensions included) or a tuple of tensors.
        t: 1-D strictly monotone times; t[0] is the initial time, decreasing t integrates backwards.
        method: a name or a method object. Explicit RK: 'euler', 'midpoint', 'heun',
            'rk4' (classic), 'rk4_38' (3/8 rule), 'heun3', 'bosh3', 'fehlberg2', 'dopri5',
            'tsit5', 'dopri8', or a ButcherTableau; multistep: 'explicit_adams',
            'implicit_adams'; implicit (stiff): 'implicit_euler', 'implicit_midpoint',
            'trapezoid', 'radauIIA3', 'radauIIA5', 'gl4', 'gl6', 'sdirk2', 'trbdf2';
            'scipy_solver' (scipy.integrate.solve_ivp).
        step: FixedStep(h) or Adaptive(rtol, atol, ...); default Adaptive() for embedded
            methods and output-to-output steps otherwise.
        gradient: DiscretizeOptimize() (default; autograd through the steps) or
            OptimizeDiscretize() (continuous adjoint, memory independent of the steps).
        check_finite: check that y0 and all outputs are finite (on a GPU the only host syncs
            of a fixed-step solve). Skipped automatically inside CUDA-graph capture: a
            fixed-step solve without them has no host syncs and no host-to-device copies
            (the grid is cached), so a training step can be captured with torch.cuda.graph
            (see `odeflow.training.cuda_graph.GraphedStep`).
        compile: run the solver through torch.compile (Inductor, C++ wrapper): a fixed grid
            becomes one compiled loop, an adaptive step one compiled call, also in the adjoint's
            backward pass. Pays off for small states where per-operation overhead dominates;
            the first call compiles (seconds to tens of seconds), later calls with the same
            shapes reuse it. f must be traceable as one graph (no torch.autograd.grad inside;
            torch.func.vjp/jvp/vmap are fine, e.g. `odeflow.flows.CNF(compile=True)`).
            Compiled solvers are kept in a cache directory ($ODEFLOW_CACHE_DIR, default
            ~/.cache/odeflow; `odeflow.set_cache_dir`), so a later process with the same
            vector field and shapes loads them in seconds instead of compiling again.
            compile="auto" (or `AutoCompile(expected_calls=...)`): solve eagerly, time the
            first calls of this problem and compile once the calls to come (expected_calls,
            else as many as made so far) are expected to save more than compiling costs
            (measured cold/warm costs; see `odeflow.solvers.compile_policy`); never compiles
            what cannot be compiled, and falls back to eager when compiling fails.
        events: an `Event` (or a list; a plain callable g(t, y) is a terminal event in both
            directions): roots of g(t, y(t)) are located on the dense output; a terminal one
            ends the solve there (Solution.status 'event', ts/ys end at the event, event_t
            carries the gradient through the event time). Every method but 'scipy_solver'
            (dense output: the RK continuous extension or cubic Hermite, the Adams polynomial).

    Step callbacks: func.callback_step / callback_accept_step / callback_reject_step(t0, y0,
    dt), when present, are called at every step (the *_adjoint ones in the adjoint's
    backward solve), as in torchdiffeq.

    Returns:
        Solution with ys of shape [len(t), *y0.shape] (a tuple of such for tuple states),
        ts, and stats (nfe, steps, accepted, rejected; nfe_backward after backward()).

    Raises:
        ValueError: malformed input (also TypeError for wrong types).
        SolverError: the numerics fail (step size underflow, too many steps, non-finite state).
    """
    if compile == "auto" or isinstance(compile, AutoCompile):
        return _solve_auto(AutoCompile() if compile == "auto" else compile, func, y0, t, method, step, gradient,
                           check_finite, events)
    if isinstance(compile, str):
        raise TypeError(f"compile must be True or False (or 'auto'); got {compile!r}")
    if compile is True and events is None:
        rec = _record(func, y0, t, method, step, gradient, events)
        if not rec.ran_compiled:  # the first compiled call: its cost is recorded for compile="auto"
            rec.compiled = True
            return policy_mod.timed_solve(rec, AutoCompile(), lambda c: _solve(
                func, y0, t, method, step, gradient, check_finite, c, events), True, fallback=False)
    return _solve(func, y0, t, method, step, gradient, check_finite, compile, events)


def _solve(func, y0, t, method, step, gradient, check_finite: bool, compile: bool, events) -> Solution:
    """`solve` with compile True or False."""
    if events is not None:
        from .event_solve import solve_with_events
        return solve_with_events(func, y0, t, method, step, gradient, events, check_finite)
    check_finite = check_finite and not capturing(_first_tensor(y0))
    problem = make_problem(func, y0, t, method, step, compile=compile, check_finite=check_finite)
    gradient = DiscretizeOptimize() if gradient is None else gradient
    if not isinstance(gradient, (DiscretizeOptimize, OptimizeDiscretize)):
        raise TypeError(f"gradient must be DiscretizeOptimize() or OptimizeDiscretize(); got {gradient!r}")
    if compile and isinstance(gradient, DiscretizeOptimize) and gradient.checkpointed:
        raise ValueError("compile=True does not combine with checkpointed DiscretizeOptimize (the compiled "
                         "loop keeps what its backward needs); drop checkpoints or use compile=False")
    out = gradient.run(problem)
    ys = out if isinstance(out, Tensor) else torch.stack(out)  # the adjoint returns its node's output as is
    if check_finite and not bool(torch.isfinite(ys.detach()).all()):
        finite_rows = torch.isfinite(ys.detach()).reshape(len(ys), -1).all(dim=1).tolist()
        first_bad = finite_rows.index(False)
        raise SolverError("the solution became non-finite (NaN/inf)", problem.t_values[first_bad], float("nan"),
                          "the ODE blows up or the fixed step is too large; use a smaller step or an "
                          "adaptive method")
    return Solution(ts=problem.t, ys=problem.packer.unpack_series(ys), stats=problem.stats)


def _first_tensor(y0: State) -> Tensor:
    first = y0[0] if isinstance(y0, (tuple, list)) and y0 else y0
    return first if isinstance(first, Tensor) else torch.empty(0)


def _record(func, y0, t, method, step, gradient, events) -> policy_mod._Record:
    """auto's record of this problem (the same vector field, method, step, gradient and shapes)."""
    from .solvers.compiled import _func_identity
    leaves = list(y0) if isinstance(y0, (tuple, list)) else [y0]
    shapes = tuple((tuple(v.shape), v.dtype, v.requires_grad) for v in leaves if isinstance(v, Tensor))
    n_t = len(t)
    key = (_func_identity(func), str(method), repr(step), type(gradient).__name__, getattr(gradient, "seminorm", None),
           shapes, n_t, torch.is_grad_enabled())
    rec = policy_mod.record_for(key)
    if rec.calls == 0 and not rec.checked:
        rec.checked = True
        why = policy_mod.compile_possible(func, method, step, gradient, events)
        if why is not None:
            rec.failed = True
            log.debug("odeflow auto-compile: solving eagerly (%s)", why)
        try:
            rec.disk_key = fingerprint(func, [str(method), repr(step), type(gradient).__name__, shapes, n_t,
                                              torch.is_grad_enabled()])
        except Unfingerprintable:
            rec.disk_key = None
    return rec


def _solve_auto(policy: AutoCompile, func, y0, t, method, step, gradient, check_finite, events) -> Solution:
    """compile="auto": eager or compiled, as `odeflow.solvers.compile_policy` decides."""

    def run(compiled: bool) -> Solution:
        return _solve(func, y0, t, method, step, gradient, check_finite, compiled, events)

    rec = _record(func, y0, t, method, step, gradient, events)
    if rec.failed:
        return run(False)
    return policy_mod.timed_solve(rec, policy, run, policy_mod.decide(rec, policy),
                                  adjoint=isinstance(gradient, OptimizeDiscretize))
