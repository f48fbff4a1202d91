"""odeflow: neural ODEs trained fast and correctly.

One solver core (explicit, multistep and implicit methods, fixed and adaptive steps, events), two ways to get gradients
(discretize-optimize and optimize-discretize), and a torchdiffeq-compatible drop-in.

The public names load on first use (PEP 562), so that `import odeflow` — and with it the
`odeflow` command's `--help` — does not pay for importing torch until a solver is needed.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any, Dict, List

__version__ = "0.1.0"

# public name -> submodule that defines it
_EXPORTS: Dict[str, str] = {
    "solve": ".solve",
    "odeint": ".odeint",
    "odeint_adjoint": ".odeint",
    "odeint_event": ".odeint",
    "odeint_dense": ".dense",
    "Event": ".solvers.events",
    "DiscretizeOptimize": ".gradients",
    "OptimizeDiscretize": ".gradients",
    "METHODS": ".solvers",
    "Adaptive": ".solvers",
    "ButcherTableau": ".solvers",
    "FixedStep": ".solvers",
    "Solution": ".solvers",
    "SolverError": ".solvers",
    "SolverStats": ".solvers",
    "get_method": ".solvers",
    "cache_dir": ".solvers.compile_cache",
    "set_cache_dir": ".solvers.compile_cache",
    "AutoCompile": ".solvers.compile_policy",
    "PerSample": ".solvers.per_sample",
    "compile_step": ".compile_step",
    "keep_freed_memory": ".malloc",
    "train": ".tasks.run",
    "TASKS": ".task_registry",
}

__all__: List[str] = list(_EXPORTS)

if TYPE_CHECKING:  # what type checkers see; at run time the names load lazily (below)
    from .compile_step import compile_step as compile_step
    from .dense import odeint_dense as odeint_dense
    from .gradients import DiscretizeOptimize as DiscretizeOptimize
    from .gradients import OptimizeDiscretize as OptimizeDiscretize
    from .malloc import keep_freed_memory as keep_freed_memory
    from .odeint import odeint as odeint
    from .odeint import odeint_adjoint as odeint_adjoint
    from .odeint import odeint_event as odeint_event
    from .solve import solve as solve
    from .solvers import METHODS as METHODS
    from .solvers import Adaptive as Adaptive
    from .solvers import ButcherTableau as ButcherTableau
    from .solvers import FixedStep as FixedStep
    from .solvers import Solution as Solution
    from .solvers import SolverError as SolverError
    from .solvers import SolverStats as SolverStats
    from .solvers import get_method as get_method
    from .solvers.compile_cache import cache_dir as cache_dir
    from .solvers.compile_cache import set_cache_dir as set_cache_dir
    from .solvers.compile_policy import AutoCompile as AutoCompile
    from .solvers.events import Event as Event
    from .solvers.per_sample import PerSample as PerSample
    from .task_registry import TASKS as TASKS
    from .tasks.run import train as train


class _LazyPackage(types.ModuleType):
    """The package object: public names resolve on first access.

    Importing a submodule whose name equals a public name (``odeflow.solve``, ``odeflow.odeint``)
    would bind the submodule over the function; that binding is skipped so that ``odeflow.solve``
    stays the function, as with an eager ``from .solve import solve``.
    """

    def __getattr__(self, name: str) -> Any:
        where = _EXPORTS.get(name)
        if where is None:
            raise AttributeError(f"module 'odeflow' has no attribute {name!r}")
        value = getattr(importlib.import_module(where, __name__), name)
        self.__dict__[name] = value
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _EXPORTS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)

    def __dir__(self) -> List[str]:
        return sorted(set(super().__dir__()) | set(_EXPORTS))


sys.modules[__name__].__class__ = _LazyPackage
