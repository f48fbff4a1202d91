"""The ODE solver core: explicit, multistep and implicit methods, fixed and adaptive steps,
dense output, events and step callbacks."""

from .adams import Adams
from .errors import SolverError
from .events import Event, EventRecord
from .implicit import IMPLICIT_METHODS, ImplicitRK
from .methods import (
    BOSH3,
    DOPRI5,
    DOPRI8,
    EULER,
    FEHLBERG2,
    HEUN,
    HEUN3,
    METHODS,
    MIDPOINT,
    RK4,
    RK4_38,
    TSIT5,
    all_method_names,
    get_method,
)
from .scipy_method import ScipySolver
from .solution import Solution, SolverStats
from .stepping import Adaptive, FixedStep
from .tableau import ButcherTableau

__all__ = [
    "SolverError",
    "ButcherTableau",
    "METHODS",
    "get_method",
    "all_method_names",
    "EULER",
    "MIDPOINT",
    "HEUN",
    "RK4",
    "RK4_38",
    "HEUN3",
    "FEHLBERG2",
    "BOSH3",
    "DOPRI5",
    "TSIT5",
    "DOPRI8",
    "Solution",
    "SolverStats",
    "Adaptive",
    "FixedStep",
    "Adams",
    "ImplicitRK",
    "IMPLICIT_METHODS",
    "ScipySolver",
    "Event",
    "EventRecord",
]
