"""The compile wrapper around one solve: ``solve(..., compile=True | "auto" | AutoCompile(...))``.

The one place that decides whether a solve runs through the compiled loop: compile=True
compiles (recording the first compiled call's cost for later "auto" decisions); "auto"
times the first eager calls of a problem and compiles once equation (1) of
`odeflow.solvers.compile_policy` says the calls to come gain more than compiling costs,
reusing compiled solvers cached on disk (`odeflow.solvers.compile_cache`). It then hands
the call to `solving.run`, never back to `solve`.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Optional, Union

import torch
import torch.nn as nn
from torch import Tensor

from .gradients import DiscretizeOptimize, OptimizeDiscretize
from .solvers import compile_policy as policy_mod
from .solvers.compile_cache import Unfingerprintable, fingerprint
from .solvers.compile_policy import AutoCompile
from .solvers.compiled import _func_identity, scan_compilable
from .solvers.event_mode import compile_refusal as event_compile_refusal
from .solvers.hooks import NAMES
from .solvers.implicit import ImplicitRK
from .solvers.methods import get_method
from .solvers.solution import Solution
from .solvers.stepping import FixedStep
from .solvers.tableau import ButcherTableau
from .solving import SolveCall, run

log = logging.getLogger(__name__)


def run_compiled(call: SolveCall, compile: Union[bool, AutoCompile]) -> Solution:
    """compile=True: the compiled loop; an `AutoCompile`: eager or compiled, as the policy decides."""
    rec = _record(call)
    if compile is True:
        if rec.ran_compiled:
            return run(call, True)
        rec.compiled = True  # the first compiled call: its cost is recorded for compile="auto"
        return timed_solve(rec, AutoCompile(), lambda c: run(call, c), True, fallback=False)
    assert isinstance(compile, AutoCompile)
    if rec.failed:
        return run(call, False)
    return timed_solve(
        rec,
        compile,
        lambda c: run(call, c),
        policy_mod.decide(rec, compile),
        adjoint=isinstance(call.gradient, OptimizeDiscretize),
    )


def timed_solve(
    rec: policy_mod._Record,
    policy: AutoCompile,
    run: Callable[[bool], Any],
    compile_now: bool,
    fallback: bool = True,
    adjoint: bool = False,
) -> Any:
    """Run one solve (``run(compile)``), timing it for the decision; a failed compile marks the
    problem as not compilable and solves it eagerly (with ``fallback``). The first call of each kind (eager: one-time
    set-up; compiled: the compile itself) is not counted as a per-call cost."""
    start = time.perf_counter()
    rec.note_previous(start, policy.adjoint_factor if adjoint else policy.backward_factor)
    first_compiled = compile_now and not rec.ran_compiled
    if compile_now:
        history = policy_mod.read_history(rec.disk_key)
        warm = "cold_s" in history or "warm_s" in history
        try:
            out = run(True)
        except (ValueError, RuntimeError) as e:
            if not fallback:
                raise
            rec.failed, rec.compiled = True, False
            log.debug(
                "odeflow auto-compile: compiling failed (%s); solving eagerly from now on",
                str(e).splitlines()[0] if str(e) else type(e).__name__,
            )
            compile_now, first_compiled = False, False
            start = time.perf_counter()
            out = run(False)
        elapsed = time.perf_counter() - start
        rec.ran_compiled = rec.ran_compiled or compile_now
        if first_compiled:
            policy_mod.write_history(rec.disk_key, **{("warm_s" if warm else "cold_s"): elapsed})
        if rec.compiled_n == 3 and rec.eager_n > 0:  # measured speedup, for the next decision
            policy_mod.write_history(
                rec.disk_key, speedup=rec.eager_call_s() / max(rec.compiled_s / rec.compiled_n, 1e-9)
            )
    else:
        out = run(False)
        elapsed = time.perf_counter() - start
    # a first call (set-up, or compiling) is not a per-call cost
    rec.last = None if (rec.calls == 0 or first_compiled) else (start, elapsed, compile_now)
    rec.calls += 1
    return out


def _record(call: SolveCall) -> policy_mod._Record:
    """The record of this problem (the same vector field, method, step, gradient and shapes)."""
    leaves = list(call.y0) if isinstance(call.y0, (tuple, list)) else [call.y0]
    shapes = tuple((tuple(v.shape), v.dtype, v.requires_grad) for v in leaves if isinstance(v, Tensor))
    n_t = len(call.t)
    key = (
        _func_identity(call.func),
        str(call.method),
        repr(call.step),
        type(call.gradient).__name__,
        getattr(call.gradient, "seminorm", None),
        shapes,
        n_t,
        torch.is_grad_enabled(),
    )
    rec = policy_mod.record_for(key)
    if rec.calls == 0 and not rec.checked:
        rec.checked = True
        why = compile_possible(call.func, call.method, call.step, call.gradient, call.events)
        if why is not None:
            rec.failed = True
            log.debug("odeflow auto-compile: solving eagerly (%s)", why)
        try:
            rec.disk_key = fingerprint(
                call.func,
                [str(call.method), repr(call.step), type(call.gradient).__name__, shapes, n_t, torch.is_grad_enabled()],
            )
        except Unfingerprintable:
            rec.disk_key = None
    return rec


def compile_possible(func: Callable, method: Any, step: Any, gradient: Any, events: Any) -> Optional[str]:
    """Why a solve cannot be compiled (None: it can be tried)."""
    if events is not None and (why := event_compile_refusal(method, step)):
        return why
    try:
        tab = get_method(method)
    except (ValueError, TypeError):
        return None  # the solve itself reports the bad method
    if not isinstance(tab, (ButcherTableau, ImplicitRK)) and not (scan_compilable(tab) and isinstance(step, FixedStep)):
        return f"method {tab.name!r} compiles only as a Runge-Kutta method, leapfrog or explicit_adams"
    if isinstance(step, FixedStep) and (step.grid is not None or step.perturb):
        return "explicit grid or perturbed steps"
    if any(getattr(func, name + sfx, None) is not None for name in NAMES for sfx in ("", "_adjoint")):
        return "step callbacks"
    if isinstance(gradient, DiscretizeOptimize) and gradient.checkpointed:
        return "checkpointed discretize-optimize"
    if isinstance(gradient, OptimizeDiscretize) and gradient.params is not None:
        own = {id(p) for p in func.parameters()} if isinstance(func, nn.Module) else set()
        if any(id(p) not in own for p in gradient.params):
            return "adjoint parameters outside the vector field's module"
    if not policy_mod.has_cxx_compiler():
        return "no C++ compiler"
    return None
