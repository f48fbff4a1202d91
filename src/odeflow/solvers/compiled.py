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
from .adams import MIN_ORDER, Adams, bashforth
from .explicit_methods import RK4_38
from .runge_kutta import rk_step
from .small_matmul import fused_small_matmuls
from .solution import SolverStats
from .solver import try_step
from .state import ErrorNorm
from .symplectic import Leapfrog, halves
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


def _scan_op() -> Callable:
    try:
        from torch._higher_order_ops.scan import scan
    except ImportError as exc:  # pragma: no cover - depends on the installed torch
        raise RuntimeError(
            f"compile=True needs torch >= 2.6 (torch.compile with scan); installed torch "
            f"{torch.__version__}. Upgrade torch or use compile=False"
        ) from exc
    return scan


def _fixed_solve(
    tab: ButcherTableau,
    f: Func,
    y0: Tensor,
    stage_times: Tensor,
    hs: Tensor,
    out_index: Tensor,
    carry_derivative: bool,
) -> Tuple[Tensor, Tensor]:
    """All steps of a fixed grid as one scan; returns (states at the output steps, final state).

    ``carry_derivative``: carry a first-same-as-last derivative from step to step. Only without
    gradients: torch's scan differentiated through that second carry gave wrong parameter
    gradients (torch 2.13, tested), so with gradients every step evaluates f(t, y) anew."""
    scan = _scan_op()

    def body(carry, xs):
        y, k1 = carry if carry_derivative else (carry, None)
        ts, h = xs
        ts_list = list(ts.unbind())
        if k1 is None:
            k1 = f(ts_list[0], y)
        y1, ks, _ = rk_step(tab, f, y, k1, ts_list, h, False)
        # Fresh tensors for the carry: a first-same-as-last y1 is also a stage input, and scan
        # refuses outputs that may alias each other or its inputs.
        return ((y1.clone(), ks[-1].clone()) if carry_derivative else y1.clone()), y1.clone()

    init = (y0, f(stage_times[0, 0], y0)) if carry_derivative else y0
    _, ys = scan(body, init, (stage_times, hs))
    return ys.index_select(0, out_index), ys[-1]


def _leapfrog_solve(
    f: Func, y0: Tensor, stage_times: Tensor, hs: Tensor, out_index: Tensor, carry_kick: bool
) -> Tuple[Tensor, Tensor]:
    """All leapfrog steps of a fixed grid as one scan (kick-drift-kick, `symplectic.Leapfrog`);
    returns (states at the output steps, final state). Stage times per step: (t, t + h/2, t + h).

    ``carry_kick``: carry the closing kick (the p-part of f at the drifted state) into the next
    step, as the eager method does; only without gradients (torch's scan differentiated through a
    second carry gave wrong parameter gradients, see `_fixed_solve`). With gradients each step
    opens with the p-part of f(t, y_n), which equals the carried kick for the separable fields the
    method is for: the p-part of a separable field reads q only, and q is the same in both."""
    scan = _scan_op()

    def body(carry, xs):
        y, kick0 = carry if carry_kick else (carry, None)
        ts, h = xs
        t0, tm, te = ts.unbind()
        q, p = halves(y)
        if kick0 is None:
            kick0 = halves(f(t0, y))[1]
        p_half = p + (0.5 * h) * kick0
        q1 = q + h * halves(f(tm, torch.cat([q, p_half], dim=-1)))[0]
        kick1 = halves(f(te, torch.cat([q1, p_half], dim=-1)))[1]
        y1 = torch.cat([q1, p_half + (0.5 * h) * kick1], dim=-1)
        return ((y1.clone(), kick1.clone()) if carry_kick else y1.clone()), y1.clone()

    init = (y0, halves(f(stage_times[0, 0], y0))[1].contiguous()) if carry_kick else y0
    _, ys = scan(body, init, (stage_times, hs))
    return ys.index_select(0, out_index), ys[-1]


def scan_compilable(method: Any) -> bool:
    """Method objects whose fixed-grid solve compiles to one scan: leapfrog and explicit Adams
    (explicit Runge–Kutta tableaus compile on every step control)."""
    return isinstance(method, Leapfrog) or (isinstance(method, Adams) and not method.implicit)


def _adams_step(
    f: Func, y: Tensor, history: Tuple[Tensor, ...], ts: Tensor, h: Tensor, keep: int
) -> Tuple[Tensor, Tuple[Tensor, ...]]:
    """One explicit Adams step as `adams.Adams.step` takes it: the 3/8-rule RK4 while fewer than
    three derivatives are known, else Adams–Bashforth of the order the history allows (at most
    ``keep`` = max_order - 1). Returns (y1, the history f_n, f_{n-1}, ... for the next step)."""
    ts_list = list(ts.unbind())
    f0 = f(ts_list[0], y)
    history = ((f0,) + history)[:keep]
    if len(history) < MIN_ORDER - 1:
        y1, _, _ = rk_step(RK4_38, f, y, f0, ts_list, h, False)
    else:
        w = bashforth(len(history))
        y1 = y + h * sum((fj * c for c, fj in zip(w[1:], history[1:])), history[0] * w[0])
    return y1, history


def _adams_solve(
    f: Func, y0: Tensor, stage_times: Tensor, hs: Tensor, out_index: Tensor, max_order: int
) -> Tuple[Tensor, Tensor]:
    """Explicit Adams on a fixed grid: the first max_order - 1 steps (a growing history) unrolled,
    the rest one scan whose carry holds the full history; returns (states at the output steps,
    final state). Stage times per step: those of the 3/8-rule RK4 (the start-up steps use them)."""
    keep = max_order - 1
    n = stage_times.shape[0]
    start = min(keep, n)
    y = y0
    history: Tuple[Tensor, ...] = ()
    ys: List[Tensor] = []
    for i in range(start):
        y, history = _adams_step(f, y, history, stage_times[i], hs[i], keep)
        ys.append(y)
    out = torch.stack(ys)
    if start < n:
        scan = _scan_op()

        def body(carry, xs):
            y, hist = carry
            y1, new = _adams_step(f, y, tuple(hist.unbind(0)), xs[0], xs[1], keep)
            return (y1.clone(), torch.stack(new).clone()), y1.clone()

        _, rest = scan(body, (y, torch.stack(history)), (stage_times[start:], hs[start:]))
        out = torch.cat([out, rest])
    return out.index_select(0, out_index), out[-1]


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


def evals_per_step(tab: ButcherTableau) -> int:
    """Evaluations of f per step once the first-same-as-last derivative is carried over."""
    return tab.stages - 1 if tab.fsal else tab.stages


def integrate_fixed_compiled(
    tab: ButcherTableau, f: Func, y0: Tensor, grid, stats: SolverStats, key: Hashable
) -> List[Tensor]:
    """Compiled counterpart of `loop.integrate_fixed` over the whole grid: the states at the
    output times crossed (grid points), differentiable through the compiled backward.
    ``key``: see `compile_key`."""
    _scan_op()  # a clear error on a torch without scan, before tracing starts
    steps = torch.tensor(sorted(grid.output_steps), device=y0.device) - 1
    # The loop length and outputs are part of the graph: each grid size gets its own copy.
    key = (key, len(grid), len(grid.output_steps))
    carry = tab.fsal and not torch.is_grad_enabled()
    outs, _ = run_compiled(_fixed_solve, key, tab, f, y0, grid.stage_table, grid.h_table, steps, carry)
    n = len(grid)
    stats.count_evals(n * evals_per_step(tab) + 1 if carry else n * tab.stages)
    stats.steps += n
    stats.accepted += n
    return list(outs.unbind(0))


def integrate_leapfrog_compiled(f: Func, y0: Tensor, grid, stats: SolverStats, key: Hashable) -> List[Tensor]:
    """Compiled counterpart of the eager leapfrog loop over the whole grid (see
    `integrate_fixed_compiled`): the states at the output times crossed. Evaluations: two per step
    and one to start when the closing kick is carried (no gradients), else three per step."""
    _scan_op()
    steps = torch.tensor(sorted(grid.output_steps), device=y0.device) - 1
    key = (key, len(grid), len(grid.output_steps))
    carry = not torch.is_grad_enabled()
    outs, _ = run_compiled(_leapfrog_solve, key, f, y0, grid.stage_table, grid.h_table, steps, carry)
    n = len(grid)
    stats.count_evals(2 * n + 1 if carry else 3 * n)
    stats.steps += n
    stats.accepted += n
    return list(outs.unbind(0))


def integrate_adams_compiled(
    method: Adams, f: Func, y0: Tensor, grid, stats: SolverStats, key: Hashable
) -> List[Tensor]:
    """Compiled counterpart of explicit Adams on a fixed grid (see `integrate_fixed_compiled`): the
    states at the output times crossed. Evaluations: one per step, four in a start-up RK4 step."""
    _scan_op()
    steps = torch.tensor(sorted(grid.output_steps), device=y0.device) - 1
    key = (key, len(grid), len(grid.output_steps))
    outs, _ = run_compiled(_adams_solve, key, f, y0, grid.stage_table, grid.h_table, steps, method.max_order)
    n = len(grid)
    rk = min(n, MIN_ORDER - 2) if method.max_order - 1 >= MIN_ORDER - 1 else n
    stats.count_evals(n + 3 * rk)
    stats.steps += n
    stats.accepted += n
    return list(outs.unbind(0))


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
