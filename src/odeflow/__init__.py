"""odeflow: neural ODEs trained fast and correctly.

One solver core (explicit, multistep and implicit methods, fixed and adaptive steps, events), two ways to get gradients
(discretize-optimize and optimize-discretize), and a torchdiffeq-compatible drop-in.
"""
from .gradients import DiscretizeOptimize, OptimizeDiscretize
from .dense import odeint_dense
from .odeint import odeint, odeint_adjoint, odeint_event
from .solve import solve
from .solvers import (METHODS, Adaptive, ButcherTableau, FixedStep, Solution, SolverError, SolverStats,
                      get_method)
from .solvers.compile_cache import cache_dir, set_cache_dir
from .solvers.compile_policy import AutoCompile
from .solvers.events import Event

__version__ = "0.1.0"

__all__ = ["solve", "odeint", "odeint_adjoint", "odeint_event", "odeint_dense", "Event", "DiscretizeOptimize", "OptimizeDiscretize", "FixedStep",
           "Adaptive", "ButcherTableau", "METHODS", "get_method", "Solution", "SolverError", "SolverStats",
           "AutoCompile", "cache_dir", "set_cache_dir"]
