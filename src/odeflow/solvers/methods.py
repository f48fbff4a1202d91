"""The table of every named method, and how to look one up by name.

This module sits above the method modules (explicit RK tableaus, Adams, implicit RK, scipy)
and builds the table from them, so none of them imports it: no import circle. A new
explicit method is a `ButcherTableau` plus its order in `explicit_methods`.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Union

from .adams import Adams
from .explicit_methods import (
    BOSH3,
    DOPRI5,
    DOPRI8,
    EULER,
    EXPLICIT_METHODS,
    FEHLBERG2,
    HEUN,
    HEUN3,
    MIDPOINT,
    RK4,
    RK4_38,
    TSIT5,
)
from .implicit import IMPLICIT_METHODS
from .scipy_method import ScipySolver
from .symplectic import LEAPFROG
from .tableau import ButcherTableau

__all__ = [
    "METHODS",
    "OTHER_METHODS",
    "all_method_names",
    "get_method",
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
]

METHODS: Dict[str, ButcherTableau] = EXPLICIT_METHODS
"""The explicit Runge–Kutta methods by name."""

OTHER_METHODS: Dict[str, Any] = {
    "explicit_adams": Adams(implicit=False),
    "implicit_adams": Adams(implicit=True),
    "scipy_solver": ScipySolver(),
    "leapfrog": LEAPFROG,  # separable fields f(t, (q, p)) only
    **IMPLICIT_METHODS,
}
"""Methods that are not explicit RK tableaus: objects with name, order, adaptive and integrate(...)."""


def all_method_names(adaptive: Optional[bool] = None) -> List[str]:
    """Every method name get_method accepts (only the adaptive ones, or only the fixed ones)."""
    ms = {**METHODS, **OTHER_METHODS}
    return sorted(k for k, m in ms.items() if adaptive is None or bool(m.adaptive) == adaptive)


def get_method(method: Union[str, ButcherTableau, object]) -> ButcherTableau:
    """Return the method for a name, or the method object itself; unknown names list the valid ones.

    Explicit RK methods are `ButcherTableau`s; the others are `solver.Solver` objects (Adams,
    implicit RK: ``name``, ``order``, ``adaptive`` and ``step(...)``) or scipy's, which has
    ``integrate(...)``."""
    if isinstance(method, ButcherTableau) or hasattr(method, "step") or hasattr(method, "integrate"):
        return method  # type: ignore[return-value]
    if isinstance(method, str) and method in METHODS:
        return METHODS[method]
    if isinstance(method, str) and method in OTHER_METHODS:
        return OTHER_METHODS[method]  # type: ignore[return-value]
    raise ValueError(
        f"unknown method {method!r}; valid methods are {', '.join(all_method_names())} (or pass a ButcherTableau)"
    )
