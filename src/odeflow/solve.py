"""`odeflow.solve`: the object door into the solver core, with a choice of gradient.

The door validates and hands on: solve -> (compile wrapper `compiling`, unless compile=False)
-> `solving.run`: problem -> (event search) -> gradient -> loop, each visited once.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence, TypeVar, Union

from torch import Tensor

from .compiling import run_compiled
from .gradients import DiscretizeOptimize, OptimizeDiscretize
from .gradients.per_sample_adjoint import per_sample_adjoint
from .solvers.compile_policy import AutoCompile
from .solvers.event_mode import compile_refusal as event_compile_refusal
from .solvers.per_sample import PerSample
from .solvers.per_sample_solve import solve_per_sample
from .solvers.problem import StepControl
from .solvers.solution import Solution
from .solvers.state import State
from .solvers.tableau import ButcherTableau
from .solving import Gradient, SolveCall, run

__all__ = ["solve", "Gradient"]

S = TypeVar("S", bound=State)  # the state: a tensor, or a tuple of tensors


def solve(
    func: Callable[[Tensor, S], S],
    y0: S,
    t: Union[Tensor, Sequence[float]],
    method: Union[str, ButcherTableau] = "dopri5",
    step: Optional[StepControl] = None,
    gradient: Optional[Gradient] = None,
    check_finite: bool = True,
    compile: Union[bool, str, AutoCompile] = False,
    events=None,
    per_sample: Union[bool, PerSample] = False,
) -> Solution:
    """Solve dy/dt = func(t, y), y(t[0]) = y0, and return y at every time in t.

    Args:
        func: f(t, y) with t a 0-d tensor and y shaped like y0 (tensor or tuple of tensors).
        y0: initial state, any shape (batch dimensions included) or a tuple of tensors.
        t: 1-D strictly monotone times; t[0] is the initial time, decreasing t integrates backwards.
        method: a name (`odeflow.solvers.all_method_names()`: explicit RK such as 'rk4', 'dopri5',
            'tsit5'; 'explicit_adams', 'implicit_adams'; implicit 'radauIIA5', 'gl4', 'sdirk2', ...;
            'scipy_solver') or a method object such as a ButcherTableau.
        step: FixedStep(h) or Adaptive(rtol, atol, ...); default Adaptive() for embedded
            methods and output-to-output steps otherwise.
        gradient: DiscretizeOptimize() (default; autograd through the steps) or
            OptimizeDiscretize() (continuous adjoint, memory independent of the steps).
        check_finite: check that y0 and the outputs are finite (skipped inside CUDA-graph
            capture, so a fixed-step training step can be captured: `training.cuda_graph`).
        compile: True runs the solver through torch.compile (one compiled loop; cached on disk,
            `odeflow.set_cache_dir`); "auto" or `AutoCompile(expected_calls=...)` compiles once
            the calls to come gain more than compiling costs (`odeflow.solvers.compile_policy`).
        events: an `Event` (or a list; a plain callable g(t, y) is a terminal event): roots of
            g(t, y(t)) on the dense output; a terminal one ends the solve there (status 'event',
            event_t carries the gradient through the event time). Not with 'scipy_solver'.
        per_sample: True (or `PerSample(compact=...)`) steps every sample of the batch (the
            leading dimension of y0) on its own: own step size, accept/reject and end; t is [T]
            or [batch, T] and f receives t as a [batch] tensor; terminal events stop each sample
            at its own root (g returns [batch] or [batch, K]; ``event_t`` is [batch], NaN where
            none). Adaptive explicit and implicit RK methods; gradients by DiscretizeOptimize()
            or OptimizeDiscretize(seminorm=True) (each sample its own backward steps); compile=True
            compiles every attempted step of the explicit methods (not with the adjoint)
            (`odeflow.solvers.per_sample`, docs/per_sample.md; an odeflow extension).

    Step callbacks func.callback_step / callback_accept_step / callback_reject_step(t0, y0, dt)
    are called at every step (the *_adjoint ones in the adjoint's backward solve), as in torchdiffeq.

    Returns: Solution: ys [len(t), *y0.shape] (a tuple for tuple states), ts, stats (nfe, steps, ...).
    Raises: ValueError / TypeError for malformed input; SolverError when the numerics fail.
    """
    gradient = DiscretizeOptimize() if gradient is None else gradient
    if not isinstance(gradient, (DiscretizeOptimize, OptimizeDiscretize)):
        raise TypeError(f"gradient must be DiscretizeOptimize() or OptimizeDiscretize(); got {gradient!r}")
    if not (isinstance(compile, (bool, AutoCompile)) or compile is None or compile == "auto"):
        raise TypeError(f"compile must be True or False (or 'auto'); got {compile!r}")
    if compile is True and events is not None and (why := event_compile_refusal(method, step)):
        raise ValueError(
            f"compile=True does not take {why}: use an adaptive Runge-Kutta method (e.g. "
            "method='dopri5' or 'radauIIA5', step=Adaptive()), or compile=False"
        )
    if per_sample is not False:
        return _per_sample(func, y0, t, method, step, gradient, check_finite, compile, events, per_sample)
    call = SolveCall(func, y0, t, method, step, gradient, check_finite, events)
    if compile is False or compile is None:
        return run(call)
    return run_compiled(call, compile if isinstance(compile, (bool, AutoCompile)) else AutoCompile())


def _per_sample(func, y0, t, method, step, gradient, check_finite, compile, events, per_sample) -> Solution:
    """solve(..., per_sample=...): what it does not support yet is named, then the per-sample loop."""
    if not isinstance(per_sample, (bool, PerSample)):
        raise TypeError(f"per_sample must be True, False or PerSample(...); got {per_sample!r}")
    missing = [
        what
        for what, used in (
            ("checkpointed DiscretizeOptimize", isinstance(gradient, DiscretizeOptimize) and gradient.checkpointed),
            ("compile='auto'", compile is not False and compile is not None and compile is not True),
            ("compile=True with OptimizeDiscretize()", compile is True and isinstance(gradient, OptimizeDiscretize)),
            ("events with OptimizeDiscretize()", events is not None and isinstance(gradient, OptimizeDiscretize)),
        )
        if used
    ]
    if missing:
        raise ValueError(
            f"per_sample=True does not support {', '.join(missing)} yet; use the default "
            "DiscretizeOptimize() eagerly, or solve without per_sample"
        )
    options = per_sample if isinstance(per_sample, PerSample) else PerSample()
    loop = per_sample_adjoint(gradient, func) if isinstance(gradient, OptimizeDiscretize) else None
    return solve_per_sample(func, y0, t, method, step, check_finite, options, events, loop, compile is True)
