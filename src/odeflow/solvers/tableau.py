"""Butcher tableaus of explicit Runge–Kutta methods as validated, frozen data.

An s-stage explicit method advances y' = f(t, y) by

    k_i = f(t + c_i h, y + h * sum_{j<i} a_ij k_j),    y_1 = y + h * sum_i b_i k_i,

and an embedded pair estimates the local error as h * sum_i e_i k_i with e = b - b_hat
(Hairer, Nørsett & Wanner, *Solving ODEs I*, §II.1 and §II.4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence, Tuple

_TOL = 1e-12


def _tuple(xs: Sequence[float]) -> Tuple[float, ...]:
    return tuple(float(x) for x in xs)


@dataclass(frozen=True)
class ButcherTableau:
    """Coefficients of an explicit RK method.

    ``a`` is the strictly lower-triangular matrix given row by row (row i has i entries),
    ``b_err`` the error weights ``b - b_hat`` (``None`` for methods without an embedded
    pair), ``dense`` the continuous-extension polynomials: ``dense[i][d]`` is the coefficient
    of theta**(d+1) in b_i(theta), so that y(t + theta h) = y + h * sum_i b_i(theta) k_i.
    Methods without ``dense`` use cubic Hermite interpolation between steps.
    """

    name: str
    order: int
    c: Sequence[float]  # stored as tuples (frozen, hashable)
    a: Sequence[Sequence[float]]
    b: Sequence[float]
    b_err: Optional[Sequence[float]] = None
    error_order: Optional[int] = None
    dense: Optional[Sequence[Sequence[float]]] = None
    fsal: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "c", _tuple(self.c))
        object.__setattr__(self, "a", tuple(_tuple(row) for row in self.a))
        object.__setattr__(self, "b", _tuple(self.b))
        if self.b_err is not None:
            object.__setattr__(self, "b_err", _tuple(self.b_err))
        if self.dense is not None:
            object.__setattr__(self, "dense", tuple(_tuple(row) for row in self.dense))
        self._validate()
        # First Same As Last is a property of the numbers, never declared: the last stage
        # is evaluated at (t + h, y_1), so it is the next step's first stage.
        fsal = (
            abs(self.c[-1] - 1.0) < _TOL
            and all(abs(x - y) < _TOL for x, y in zip(self.a[-1], self.b[:-1]))
            and abs(self.b[-1]) < _TOL
        )
        object.__setattr__(self, "fsal", fsal)

    @property
    def stages(self) -> int:
        return len(self.c)

    @property
    def adaptive(self) -> bool:
        """True when the method has an embedded error estimate (usable with `Adaptive`)."""
        return self.b_err is not None

    def _validate(self) -> None:
        s = len(self.c)
        if s < 1 or self.order < 1:
            raise ValueError(f"{self.name}: a tableau needs at least one stage and order >= 1")
        if len(self.a) != s or any(len(row) != i for i, row in enumerate(self.a)):
            raise ValueError(f"{self.name}: row i of `a` must have i entries for an explicit method")
        if len(self.b) != s:
            raise ValueError(f"{self.name}: `b` has {len(self.b)} entries, expected {s}")
        if abs(self.c[0]) > _TOL:
            raise ValueError(f"{self.name}: c_0 must be 0 for an explicit method")
        for i, row in enumerate(self.a):
            if abs(sum(row) - self.c[i]) > 1e-10:
                raise ValueError(f"{self.name}: row {i} of `a` sums to {sum(row)}, not c_{i}={self.c[i]}")
        if abs(sum(self.b) - 1.0) > 1e-10:
            raise ValueError(f"{self.name}: weights `b` sum to {sum(self.b)}, not 1 (consistency)")
        if self.b_err is not None:
            if len(self.b_err) != s:
                raise ValueError(f"{self.name}: `b_err` has {len(self.b_err)} entries, expected {s}")
            if abs(sum(self.b_err)) > 1e-10:
                raise ValueError(f"{self.name}: error weights sum to {sum(self.b_err)}, not 0")
            if self.error_order is None:
                raise ValueError(f"{self.name}: an embedded pair needs `error_order`")
        if self.dense is not None:
            if len(self.dense) != s:
                raise ValueError(f"{self.name}: `dense` needs one polynomial per stage")
            for i, poly in enumerate(self.dense):
                if abs(sum(poly) - self.b[i]) > 1e-9:
                    raise ValueError(f"{self.name}: dense b_{i}(1) = {sum(poly)} differs from b_{i}")
