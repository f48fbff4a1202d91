"""Compiled solver paths (`solve(..., compile=True)`): torch.compile with Inductor's C++ wrapper.

For small states (a few hundred numbers, batch 1) a Runge–Kutta step is dozens of tiny tensor
operations and PyTorch's per-operation dispatch, not arithmetic, sets the cost. Compiling
turns those operations into one C++ call:

- fixed grid: the whole solve is one ``scan`` over the steps (torch's structured loop), so
  the forward pass and its backward pass are one compiled call each, and compile time does
  not grow with the number of steps;
- adaptive steps: every attempted step (all stages plus the error norm) is one compiled call;
  accepting, rejecting and choosing the next step stay in Python (one host sync per attempt,
  as in eager mode).

The vector field must be traceable as one graph (no host syncs, no torch.autograd.grad);
inside the compiled adjoint its vector-Jacobian products come from torch.func.vjp.
Evaluations are counted outside the compiled code (NFE per step is fixed by the tableau).

Each compiled function is compiled ahead of time for its arguments and saved in the cache
directory (`compile_cache`): a later process loads it instead of tracing and compiling again.
What cannot be saved is compiled in-process by torch.compile, as before.
"""

from __future__ import annotations

import functools
import logging
import pickle
import types
from collections import OrderedDict
from typing import Any, Callable, Hashable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from . import compile_cache as cache
from .adams import Adams
from .compiled_grid import AdamsStep, LeapfrogStep, RKStep, grid_solve, scan_op
from .small_matmul import fused_small_matmuls
from .solution import SolverStats
from .solver import try_step
from .state import ErrorNorm
from .symplectic import Leapfrog
from .tableau import ButcherTableau

Func = Callable[[Tensor, Tensor], Tensor]
log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def inductor_options() -> dict:
    """Inductor settings of odeflow's compiles: the C++ wrapper (no Python between the kernels of
    a step), built apart from the kernels where this torch can. The wrapper of a solve is one
    long function (the loop and every kernel call); g++ at -O3 spends minutes on it (a CNF
    training step's forward and backward: 498 CPU s), built apart it takes -O1 and the kernels
    keep -O3 (21 CPU s), with no slower iterations measured (benchmarks/RESULTS.md)."""
    from torch._inductor import config

    options = {"cpp_wrapper": True}
    if hasattr(config, "cpp_wrapper_build_separate"):
        options["cpp_wrapper_build_separate"] = True
    return options


def scan_compilable(method: Any) -> bool:
    """Method objects whose fixed-grid solve compiles to one scan: leapfrog and explicit Adams
    (explicit Runge–Kutta tableaus compile on every step control)."""
    return isinstance(method, Leapfrog) or (isinstance(method, Adams) and not method.implicit)


def _attempt(
    tab: ButcherTableau, f: Func, norm: ErrorNorm, y: Tensor, k1: Optional[Tensor], times_h: Tensor
) -> Tuple[Tensor, Tuple[Tensor, ...], Tensor]:
    """One attempted adaptive step: (y1, stage derivatives, error norm as a 0-d tensor).
    times_h holds the stage times and, last, the step size."""
    y1, ks, en = try_step(tab, f, norm, y, k1, list(times_h[:-1].to(y.dtype).unbind()), times_h[-1])
    return y1, tuple(ks), en


@functools.lru_cache(maxsize=256)
def _compiled(fn: Callable, key: Hashable) -> Callable:
    """torch.compile of a private copy of fn per key: torch.compile keeps its compiled graphs
    (and its limit on recompilations) per code object, so every vector field and state shape
    gets its own copy instead of piling guards onto one shared function."""
    copy = types.FunctionType(fn.__code__.replace(), fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    return torch.compile(copy, fullgraph=True, dynamic=False, backend=_inductor_cpp_wrapper)


def _inductor_cpp_wrapper(graph, example_inputs):
    """Inductor with its C++ wrapper, configured at compile time only (torch.compile(options=...)
    would re-apply the configuration on every call)."""
    from torch._inductor.compile_fx import compile_fx

    return compile_fx(graph, example_inputs, config_patches=inductor_options())


def _func_identity(func: Callable) -> Hashable:
    """Identifies a vector field across calls: a function by its code and what its closure
    holds (a lambda re-created every iteration around the same model is the same field)."""
    if isinstance(func, types.MethodType):
        return id(func.__func__), id(func.__self__)
    if isinstance(func, types.FunctionType):
        cells: List[Optional[int]] = []
        for cell in func.__closure__ or ():
            try:
                cells.append(id(cell.cell_contents))
            except ValueError:  # an empty cell
                cells.append(None)
        return (id(func.__code__), *cells)
    return id(func)


def compile_key(kind: str, tab: Any, user_func: Callable, y: Tensor) -> Hashable:
    """What a compiled solver function is specialised for: one vector field, method (a tableau or
    a method object, by name) and state."""
    return kind, tab.name, _func_identity(user_func), tuple(y.shape), y.dtype, str(y.device)


_VARIANTS: OrderedDict[Hashable, List[Callable]] = OrderedDict()
_MAX_VARIANTS = 8


def _signature(args: Sequence) -> Hashable:
    """What, beyond the compile key, selects a compiled variant: which tensor arguments need
    gradients, which optional ones are given, and the grad mode."""
    return torch.is_grad_enabled(), tuple(
        (tuple(a.shape), a.dtype, a.requires_grad) if isinstance(a, Tensor) else a is None for a in args
    )


def _obtain(fn: Callable, key: Hashable, args: Sequence) -> Callable:
    """A compiled fn for these arguments: loaded from the cache directory, or compiled ahead of
    time and saved there; when it cannot be persisted, torch.compile in this process."""
    from torch._dynamo import exc as dynamo_exc

    if not cache.supported():
        log.debug("odeflow: this torch (%s) cannot save compiled functions; compiling in-process", torch.__version__)
        return _compiled(fn, key)
    try:
        path = cache.entry_path(cache.fingerprint(fn, args))
    except cache.Unfingerprintable as e:
        log.debug("odeflow: compiled solver not persisted (%s)", e)
        return _compiled(fn, key)
    if path.exists():
        loaded = cache.load(path, fn)
        if loaded is not None:
            return loaded
    try:
        with fused_small_matmuls():
            compiled = cache.aot_compile(fn, args, inductor_options())
    except (dynamo_exc.PackageError, TypeError, OSError, pickle.PicklingError) as e:
        # Guards or code that cannot be saved (a vector field whose class is defined inside a
        # function raises TypeError; one whose source cannot be read, e.g. defined in code piped to
        # python, raises OSError; a class exec'd outside any module cannot be pickled): compiled
        # in-process only.
        log.debug("odeflow: compiled solver not persisted (%s)", e)
        return _compiled(fn, key)
    cache.save(compiled, path)
    return compiled


def _call(fn: Callable, key: Hashable, args: Sequence):
    slot = (fn, key, _signature(args))
    variants = _VARIANTS.setdefault(slot, [])
    _VARIANTS.move_to_end(slot)
    while len(_VARIANTS) > 256:
        _VARIANTS.popitem(last=False)
    for variant in variants:
        try:
            return variant(*args)
        except RuntimeError as e:
            if not cache.guard_failed(e):
                raise
    if len(variants) >= _MAX_VARIANTS:
        raise RuntimeError(
            "compile=True had to recompile the solver too often for one vector field and state shape: "
            "something it depends on changes from call to call (e.g. a Python number inside f). Make "
            "it a tensor, or use compile=False"
        )
    variant = _obtain(fn, key, args)
    variants.append(variant)
    try:
        with fused_small_matmuls():  # an in-process torch.compile compiles on its first call
            return variant(*args)
    except RuntimeError as e:
        if not cache.guard_failed(e):  # a saved entry that does not fit after all: compile afresh
            raise
        with fused_small_matmuls():
            variants[-1] = cache.aot_compile(fn, args, inductor_options())
        return variants[-1](*args)


def run_compiled(fn: Callable, key: Hashable, *args):
    """Call the compiled version of fn, turning tracing and build failures into clear errors."""
    from torch._dynamo import exc as dynamo_exc
    from torch._inductor import exc as inductor_exc

    try:
        return _call(fn, key, args)
    except dynamo_exc.FailOnRecompileLimitHit as e:
        raise RuntimeError(
            "compile=True had to recompile the solver too often for one vector field and state shape: "
            "something it depends on changes from call to call (e.g. a Python number inside f). Make "
            "it a tensor, or use compile=False"
        ) from e
    except (dynamo_exc.Unsupported, getattr(dynamo_exc, "UncapturedHigherOrderOpError", dynamo_exc.Unsupported)) as e:
        reason = str(e).strip().splitlines()[0]
        raise ValueError(
            f"compile=True could not capture the vector field as one graph ({reason}). A compiled solve "
            "needs f(t, y) made of tensor operations only: no .item()/float() or data-dependent Python "
            "branches, no torch.autograd.grad (take derivatives with torch.func, as CNF(compile=True) does). "
            "Use compile=False for this vector field"
        ) from e
    except (dynamo_exc.BackendCompilerFailed, inductor_exc.CppCompileError, inductor_exc.InductorError) as e:
        raise RuntimeError(
            "compile=True: Inductor failed to build the compiled solver (it needs a working C++ compiler, "
            f"e.g. gcc). Underlying error: {str(e).strip().splitlines()[0]}. Use compile=False"
        ) from e


def integrate_grid_compiled(stepper: Any, f: Func, y0: Tensor, grid, stats: SolverStats, key: Hashable) -> List[Tensor]:
    """Compiled counterpart of `loop.integrate_fixed` over the whole grid for any method given as a
    `compiled_grid` stepper: the states at the output times crossed (grid points), differentiable
    through the compiled backward. ``key``: see `compile_key`."""
    scan_op()  # a clear error on a torch without scan, before tracing starts
    steps = torch.tensor(sorted(grid.output_steps), device=y0.device) - 1
    # The loop length and outputs are part of the graph: each grid size gets its own copy.
    key = (key, len(grid), len(grid.output_steps))
    outs, _ = run_compiled(grid_solve, key, stepper, f, y0, grid.stage_table, grid.h_table, steps)
    n = len(grid)
    stats.count_evals(stepper.evaluations(n))
    stats.steps += n
    stats.accepted += n
    return list(outs.unbind(0))


def integrate_fixed_compiled(
    tab: ButcherTableau, f: Func, y0: Tensor, grid, stats: SolverStats, key: Hashable
) -> List[Tensor]:
    """Explicit Runge–Kutta steps over the whole grid, compiled (`integrate_grid_compiled`); the
    first-same-as-last derivative is carried only without gradients."""
    stepper = RKStep(tab, carry_derivative=tab.fsal and not torch.is_grad_enabled())
    return integrate_grid_compiled(stepper, f, y0, grid, stats, key)


def scan_stepper(method: Any) -> Any:
    """The `compiled_grid` stepper of a method object that `scan_compilable` accepts."""
    if isinstance(method, Leapfrog):
        return LeapfrogStep(carry_kick=not torch.is_grad_enabled())
    return AdamsStep.of(method.max_order)


def counted(f: Func, count: Callable[[int], None]) -> Func:
    """f with every call counted through ``count(1)``: for the evaluations a compiled solve
    makes outside its compiled steps (first derivative and initial step size, outputs)."""

    def f_counted(t: Tensor, y: Tensor) -> Tensor:
        count(1)
        return f(t, y)

    return f_counted


class CompiledAttempt:
    """Attempted adaptive steps through one compiled call each (see `loop.integrate_adaptive`).

    ``count(n)`` receives the number of f evaluations of every attempt; ``key``: see `compile_key`."""

    def __init__(
        self, tab: ButcherTableau, f: Func, norm: ErrorNorm, count: Callable[[int], None], key: Hashable
    ) -> None:
        self.tab, self.f, self.norm, self.count, self.key = tab, f, norm, count, key

    def __call__(
        self, y: Tensor, k1: Optional[Tensor], t: float, h: float, times
    ) -> Tuple[Tensor, Sequence[Tensor], Tensor]:
        self.count(self.tab.stages - (0 if k1 is None else 1))
        stage_times = [t + ci * h for ci in self.tab.c]
        if times.anchor is None:  # one host-to-tensor conversion for times and step
            times_h = torch.tensor(stage_times + [h], dtype=torch.float64, device=y.device)
        else:  # differentiable times
            h_t = torch.tensor([h], dtype=torch.float64, device=y.device)
            times_h = torch.cat([times.many(stage_times).to(torch.float64), h_t])
        return run_compiled(_attempt, self.key, self.tab, self.f, self.norm, y, k1, times_h)
