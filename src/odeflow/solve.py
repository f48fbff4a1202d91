"""`odeflow.solve`: the object door into the solver core, with a choice of gradient."""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Union

import torch
from torch import Tensor

from .gradients import DiscretizeOptimize, OptimizeDiscretize
from .solvers.errors import SolverError
from .solvers.problem import StepControl, make_problem
from .solvers.solution import Solution
from .solvers.state import State
from .solvers.tableau import ButcherTableau

Gradient = Union[DiscretizeOptimize, OptimizeDiscretize]


def solve(func: Callable[[Tensor, State], State], y0: State, t: Union[Tensor, Sequence[float]],
          method: Union[str, ButcherTableau] = "dopri5", step: Optional[StepControl] = None,
          gradient: Optional[Gradient] = None, check_finite: bool = True, compile: bool = False) -> Solution:
    """Solve dy/dt = func(t, y), y(t[0]) = y0, and return y at every time in t.

    Args:
        func: f(t, y) with t a 0-d tensor and y shaped like y0 (tensor or tuple of tensors).
        y0: initial state, any shape (batch dimensions included) or a tuple of tensors.
        t: 1-D strictly monotone times; t[0] is the initial time, decreasing t integrates backwards.
        method: a name ('euler', 'midpoint', 'heun', 'rk4', 'bosh3', 'dopri5', 'tsit5',
            'dopri8') or a ButcherTableau.
        step: FixedStep(h) or Adaptive(rtol, atol, ...); default Adaptive() for embedded
            methods and output-to-output steps otherwise.
        gradient: DiscretizeOptimize() (default; autograd through the steps) or
            OptimizeDiscretize() (continuous adjoint, memory independent of the steps).
        check_finite: one final check that all outputs are finite (the only host sync of a
            fixed-step solve).
        compile: run the solver through torch.compile (Inductor, C++ wrapper): a fixed grid
            becomes one compiled loop, an adaptive step one compiled call, also in the adjoint's
            backward pass. Pays off for small states where per-operation overhead dominates;
            the first call compiles (seconds to tens of seconds), later calls with the same
            shapes reuse it. f must be traceable as one graph (no torch.autograd.grad inside).

    Returns:
        Solution with ys of shape [len(t), *y0.shape] (a tuple of such for tuple states),
        ts, and stats (nfe, steps, accepted, rejected; nfe_backward after backward()).

    Raises:
        ValueError / TypeError for malformed input; SolverError when the numerics fail.
    """
    problem = make_problem(func, y0, t, method, step, compile=compile)
    gradient = DiscretizeOptimize() if gradient is None else gradient
    if not isinstance(gradient, (DiscretizeOptimize, OptimizeDiscretize)):
        raise TypeError(f"gradient must be DiscretizeOptimize() or OptimizeDiscretize(); got {gradient!r}")
    if compile and isinstance(gradient, DiscretizeOptimize) and gradient.checkpointed:
        raise ValueError("compile=True does not combine with checkpointed DiscretizeOptimize (the compiled "
                         "loop keeps what its backward needs); drop checkpoints or use compile=False")
    ys_list = gradient.run(problem)
    ys = torch.stack(ys_list)
    if check_finite and not bool(torch.isfinite(ys.detach()).all()):
        finite_rows = torch.isfinite(ys.detach()).reshape(len(ys_list), -1).all(dim=1).tolist()
        first_bad = finite_rows.index(False)
        raise SolverError("the solution became non-finite (NaN/inf)", problem.t_values[first_bad], float("nan"),
                          "the ODE blows up or the fixed step is too large; use a smaller step or an "
                          "adaptive method")
    return Solution(ts=problem.t, ys=problem.packer.unpack_series(ys), stats=problem.stats)
