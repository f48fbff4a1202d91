"""One list of every solver method, read from the method table itself (as diffrax keeps one list of
every solver for its tests): contract tests run over it, or over a part named by what the methods
are, so a new method is tested without being listed anywhere.

    EVERY_METHOD      every method with gradients for any field (scipy_solver, a wrapper with no
                      gradient through scipy, is tested on its own in test_scipy_agreement.py)
    SYMPLECTIC        methods for separable Hamiltonian fields only (leapfrog): test_symplectic.py
    EXPLICIT          Butcher-tableau Runge-Kutta methods
    IMPLICIT          implicit Runge-Kutta methods (Newton on the stage equations)
    ADAMS             multistep methods
    ADAPTIVE / FIXED  by whether the method has an error estimate
"""

from __future__ import annotations

from typing import List

from odeflow.solvers import ButcherTableau, all_method_names, get_method
from odeflow.solvers.adams import Adams
from odeflow.solvers.implicit import ImplicitRK
from odeflow.solvers.symplectic import Leapfrog

SYMPLECTIC: List[str] = [m for m in all_method_names() if isinstance(get_method(m), Leapfrog)]
EVERY_METHOD: List[str] = [m for m in all_method_names() if m != "scipy_solver" and m not in SYMPLECTIC]
EXPLICIT: List[str] = [m for m in EVERY_METHOD if isinstance(get_method(m), ButcherTableau)]
IMPLICIT: List[str] = [m for m in EVERY_METHOD if isinstance(get_method(m), ImplicitRK)]
ADAMS: List[str] = [m for m in EVERY_METHOD if isinstance(get_method(m), Adams)]
ADAPTIVE: List[str] = [m for m in EVERY_METHOD if get_method(m).adaptive]
FIXED: List[str] = [m for m in EVERY_METHOD if not get_method(m).adaptive]

assert sorted(EXPLICIT + IMPLICIT + ADAMS) == EVERY_METHOD, "a method of a new kind: name its kind here"
