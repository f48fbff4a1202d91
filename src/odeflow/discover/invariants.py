"""Affine conservation laws along the data, c·x = k (e.g. S + I + R = 1 in SIR), and what they mean
for SINDy.

On states with c·x = k every library column is determined up to the others: 1 = (c·x)/k, and
m(x)·(c·x − k) = 0 for every monomial m, so the polynomial library is singular on the data and no
selection rule can tell x' = a·1 from x' = (a/k)(c·x). The model is identifiable only up to that
relation. The canonical choice made here: one variable per law (the last one, in column order,
whose weight in the law is at least half the largest, in standardized units) is left out of the
library, so every equation is written in the remaining variables; the law is reported with the
equations. (SIR's R is left out: S' = −βSI, I' = βSI − γI, R' = γI are then the unique sparse
model.) Nothing can be said from such data about how the field behaves off the level set c·x = k,
so the nearby samples are perturbed within it (`project`).

Detection (standardized coordinates z = (x − m)/s, so the test is unit-free): the right singular
vectors v of the centred z whose spread std(v·z) is below `tol` (a law holds to within that fraction
of a typical variable's std: noise and fit error, not dynamics), and, where derivatives are given,
along which the derivative also vanishes, rms(v·ż) < `tol_rate` · rms(ż) (so that a trajectory that
merely settles onto a plane after a transient, where v·ż was large, is not taken for a law).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np


@dataclass
class AffineInvariant:
    """coefficients·x = value along the data (raw units; the eliminated variable's coefficient is 1)."""

    coefficients: np.ndarray  # [d]
    value: float
    eliminated: int  # index of the variable left out of the library
    spread: float  # std of coefficients·x along the data, in units of the eliminated variable's std

    def text(self, variables: Sequence[str], precision: int = 4) -> str:
        parts = []
        for c, v in zip(self.coefficients, variables):
            if abs(c) < 1e-12:
                continue
            parts.append(
                ("- " if c < 0 else "+ ")
                + (v if abs(c - round(c)) < 1e-12 and abs(c) == 1 else f"{abs(c):.{precision}f} {v}")
            )
        lhs = " ".join(parts)
        lhs = lhs[2:] if lhs.startswith("+ ") else "-" + lhs[2:]
        return (
            f"conserved along the data: {lhs} = {self.value:.{precision}g} (spread {self.spread:.2g}); "
            f"{variables[self.eliminated]} is left out of the library"
        )


def find_affine_invariants(
    x: np.ndarray, xdot: Optional[np.ndarray] = None, tol: float = 0.05, tol_rate: float = 0.25
) -> List[AffineInvariant]:
    """Affine laws c·x = k holding along samples x [n, d] (and, if given, with c·ẋ ≈ 0 for xdot [n, d])."""
    x = np.asarray(x, dtype=np.float64)
    n, d = x.shape
    if n < d + 2 or d < 2:
        return []
    mean, std = x.mean(axis=0), x.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    z = (x - mean) / std
    _, sv, vt = np.linalg.svd(z / np.sqrt(n), full_matrices=False)
    laws = [j for j in range(d) if sv[j] < tol]
    if xdot is not None and laws:
        u = np.asarray(xdot, dtype=np.float64) / std
        ref = np.sqrt(np.mean(u**2)) or 1.0
        laws = [j for j in laws if np.sqrt(np.mean((u @ vt[j]) ** 2)) < tol_rate * ref]
    if not laws:
        return []
    # canonical elimination (in standardized units): each law in turn removes the last variable whose
    # weight is at least half the law's largest, after the variables already removed are eliminated
    rows = vt[laws].copy()  # [r, d]
    out: list = []
    used: List[int] = []
    for i in range(len(rows)):
        w = rows[i]
        big = np.abs(w) >= 0.5 * np.abs(w).max()
        big[used] = False
        if not big.any():
            continue
        j = int(np.flatnonzero(big)[-1])
        rows[i] = w / w[j]
        for r in range(len(rows)):
            if r != i:
                rows[r] = rows[r] - rows[r][j] * rows[i]
        used.append(j)
    for i, j in enumerate(used):
        c = rows[i] / std * std[j]  # raw units, coefficient of x_j = 1
        c[np.abs(c) < 1e-9 * np.abs(c).max()] = 0.0
        out.append(AffineInvariant(c, float(c @ mean), j, float(np.std(x @ c) / std[j])))
    return out


def project(delta_std: np.ndarray, std: np.ndarray, laws: Sequence[AffineInvariant]) -> np.ndarray:
    """Perturbations δ (standardized units, [..., d]) with their components across the laws removed,
    so that x + s ⊙ δ keeps every c·x (s [d]: the per-variable scale)."""
    if not laws:
        return delta_std
    std = np.asarray(std, dtype=np.float64)
    q, _ = np.linalg.qr(np.stack([law.coefficients * std for law in laws], axis=1))  # [d, r]
    return delta_std - (delta_std @ q) @ q.T
