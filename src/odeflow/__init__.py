"""odeflow: neural ODEs trained fast and correctly.

One solver core (explicit Runge–Kutta, fixed and adaptive steps), two ways to get gradients
(discretize-optimize and optimize-discretize), and a torchdiffeq-compatible drop-in.
"""
from .gradients import DiscretizeOptimize, OptimizeDiscretize
from .odeint import odeint, odeint_adjoint
from .solve import solve
from .solvers import (METHODS, Adaptive, ButcherTableau, FixedStep, Solution, SolverError, SolverStats,
                      get_method)

__version__ = "0.1.0"

__all__ = ["solve", "odeint", "odeint_adjoint", "DiscretizeOptimize", "OptimizeDiscretize", "FixedStep",
           "Adaptive", "ButcherTableau", "METHODS", "get_method", "Solution", "SolverError", "SolverStats"]
