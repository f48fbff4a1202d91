"""The ODE solver core: explicit Runge–Kutta methods, fixed and adaptive steps, dense output."""
from .errors import SolverError
from .methods import BOSH3, DOPRI5, DOPRI8, EULER, HEUN, METHODS, MIDPOINT, RK4, TSIT5, get_method
from .solution import Solution, SolverStats
from .stepping import Adaptive, FixedStep
from .tableau import ButcherTableau

__all__ = ["SolverError", "ButcherTableau", "METHODS", "get_method", "EULER", "MIDPOINT", "HEUN", "RK4",
           "BOSH3", "DOPRI5", "TSIT5", "DOPRI8", "Solution", "SolverStats", "Adaptive", "FixedStep"]
