"""Coefficients of the implicit Runge–Kutta methods (Hairer & Wanner, *Solving ODEs II*, §IV.5
and §IV.6; TR-BDF2: Bank et al. 1985 / Hosea & Shampine 1996 as an ESDIRK).

An s-stage implicit method solves for all stages at once,
    Z_i = h sum_j a_ij f(t + c_i h, y + Z_j),      y_1 = y + h sum_j b_j f(t + c_j h, y + Z_j).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

S6 = math.sqrt(6.0)
S3 = math.sqrt(3.0)
S15 = math.sqrt(15.0)
G = 1.0 - 1.0 / math.sqrt(2.0)  # SDIRK / TR-BDF2 diagonal


@dataclass(frozen=True)
class ImplicitTableau:
    """A, b, c of an implicit RK method; ``b_hat`` (optional) the weights of the embedded
    solution y + h (gamma0 f(t, y) + sum_j b_hat_j F_j) used for step-size control."""

    name: str
    order: int
    a: Tuple[Tuple[float, ...], ...]
    b: Tuple[float, ...]
    c: Tuple[float, ...]
    b_hat: Optional[Tuple[float, ...]] = None
    gamma0: float = 0.0
    error_order: Optional[int] = None

    def __post_init__(self) -> None:
        s = len(self.c)
        if len(self.a) != s or any(len(r) != s for r in self.a) or len(self.b) != s:
            raise ValueError(f"{self.name}: A must be {s}x{s} and b of length {s}")
        for i, row in enumerate(self.a):
            if abs(sum(row) - self.c[i]) > 1e-12:
                raise ValueError(f"{self.name}: row {i} of A sums to {sum(row)}, not c_{i}={self.c[i]}")
        if abs(sum(self.b) - 1) > 1e-12:
            raise ValueError(f"{self.name}: b sums to {sum(self.b)}, not 1")
        if self.b_hat is not None and abs(sum(self.b_hat) + self.gamma0 - 1) > 1e-12:
            raise ValueError(f"{self.name}: the embedded weights must sum to 1")

    @property
    def stages(self) -> int:
        return len(self.c)

    @property
    def adaptive(self) -> bool:
        return self.b_hat is not None


def _embedded(c: Tuple[float, ...], gamma0: float) -> Tuple[float, ...]:
    """b_hat with sum_j b_hat_j c_j^(k-1) = 1/k - gamma0 [k = 1], k = 1..s (order s)."""
    import numpy as np

    s = len(c)
    v = np.array([[cj**k for cj in c] for k in range(s)])
    rhs = np.array([1.0 / (k + 1) for k in range(s)])
    rhs[0] -= gamma0
    return tuple(float(x) for x in np.linalg.solve(v, rhs))


def _radau_gamma0(a) -> float:
    """1 / (the real eigenvalue of A^-1), or 1/|eigenvalue| when there is none (Hairer II, IV.8)."""
    import numpy as np

    eig = np.linalg.eigvals(np.linalg.inv(np.array(a)))
    real = [e.real for e in eig if abs(e.imag) < 1e-12]
    return 1.0 / (real[0] if real else abs(eig[0]))


def _with_embedding(name: str, order: int, a, b, c, error_order: int) -> ImplicitTableau:
    g0 = _radau_gamma0(a)
    return ImplicitTableau(name, order, a, b, c, _embedded(c, g0), g0, error_order)


IMPLICIT_EULER = ImplicitTableau(
    "implicit_euler", 1, ((1.0,),), (1.0,), (1.0,), b_hat=(0.0,), gamma0=1.0, error_order=1
)
IMPLICIT_MIDPOINT = ImplicitTableau("implicit_midpoint", 2, ((0.5,),), (1.0,), (0.5,))
# Trapezoid (Crank–Nicolson); embedded: explicit Euler (error order 1).
TRAPEZOID = ImplicitTableau(
    "trapezoid", 2, ((0.0, 0.0), (0.5, 0.5)), (0.5, 0.5), (0.0, 1.0), b_hat=(1.0, 0.0), error_order=1
)
RADAU_IIA3 = _with_embedding("radauIIA3", 3, ((5 / 12, -1 / 12), (3 / 4, 1 / 4)), (3 / 4, 1 / 4), (1 / 3, 1.0), 2)
RADAU_IIA5 = _with_embedding(
    "radauIIA5",
    5,
    (
        ((88 - 7 * S6) / 360, (296 - 169 * S6) / 1800, (-2 + 3 * S6) / 225),
        ((296 + 169 * S6) / 1800, (88 + 7 * S6) / 360, (-2 - 3 * S6) / 225),
        ((16 - S6) / 36, (16 + S6) / 36, 1 / 9),
    ),
    ((16 - S6) / 36, (16 + S6) / 36, 1 / 9),
    ((4 - S6) / 10, (4 + S6) / 10, 1.0),
    3,
)
GL4 = ImplicitTableau(
    "gl4", 4, ((0.25, 0.25 - S3 / 6), (0.25 + S3 / 6, 0.25)), (0.5, 0.5), (0.5 - S3 / 6, 0.5 + S3 / 6)
)
GL6 = ImplicitTableau(
    "gl6",
    6,
    (
        (5 / 36, 2 / 9 - S15 / 15, 5 / 36 - S15 / 30),
        (5 / 36 + S15 / 24, 2 / 9, 5 / 36 - S15 / 24),
        (5 / 36 + S15 / 30, 2 / 9 + S15 / 15, 5 / 36),
    ),
    (5 / 18, 4 / 9, 5 / 18),
    (0.5 - S15 / 10, 0.5, 0.5 + S15 / 10),
)
# Two-stage L-stable SDIRK of order 2 (Alexander 1977), stiffly accurate.
SDIRK2 = ImplicitTableau(
    "sdirk2", 2, ((G, 0.0), (1 - G, G)), (1 - G, G), (G, 1.0), b_hat=_embedded((G, 1.0), G), gamma0=G, error_order=2
)
# TR-BDF2 as a stiffly accurate ESDIRK: trapezoid to 2G, then BDF2 to 1; embedded: third-order
# quadrature on the nodes (0, 2G, 1).
_W = math.sqrt(2.0) / 4
TRBDF2 = ImplicitTableau(
    "trbdf2",
    2,
    ((0.0, 0.0, 0.0), (G, G, 0.0), (_W, _W, G)),
    (_W, _W, G),
    (0.0, 2 * G, 1.0),
    b_hat=_embedded((0.0, 2 * G, 1.0), 0.0),
    gamma0=0.0,
    error_order=3,
)

ALL = (IMPLICIT_EULER, IMPLICIT_MIDPOINT, TRAPEZOID, RADAU_IIA3, RADAU_IIA5, GL4, GL6, SDIRK2, TRBDF2)
