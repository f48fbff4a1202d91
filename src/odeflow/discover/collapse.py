"""Moves that replace several terms of an equation by one (odeflow.discover.model_search).

A sparse model can be imitated along the data by a denser one: on a Brusselator run the constant a
in ẋ = a − (b + 1) x + x²y was replaced by c₁y + c₂y² + c₃y³, which along the orbit differs from a
by about 1 % and fitted the observations as well as the truth (BIC 33.2 against 33.8). No move of
one or two terms leads back: each single drop costs far more than the BIC tolerance (the three terms
only imitate the constant together), and adding the constant alone makes nothing better.

The move: for each equation i and each allowed term j it does not use, the current model's own
field f_i = Ξ_i Θ(x) on the samples is regressed on the chosen terms plus j, and chosen terms are
removed one at a time by backward elimination (the one whose removal raises the residual least),
j always kept. After k removals the support has k − 1 fewer terms; its relative residual

    ρ = ‖f_i − Θ_S ξ_S‖ / ‖f_i‖   (least squares on the samples)

says how well it reproduces the current field along the data. The candidates with the smallest ρ
are then fitted to the observations (their start: those least-squares coefficients) and scored by
BIC like every other move; the sparsest-within rule decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

import numpy as np

from .selection import _gram_rss


@dataclass(frozen=True)
class Collapse:
    """A k-for-1 replacement in one equation: the new support, its start coefficients (least squares
    of the current field on the samples) and how far that leaves the current field (ρ)."""

    equation: int
    added: int  # library column brought in
    removed: tuple  # library columns taken out
    support: np.ndarray  # [m] the equation's new support
    start: np.ndarray  # [m] its coefficients (0 off the support)
    rho: float


def collapse_moves(theta: np.ndarray, coefficients: np.ndarray, allowed: np.ndarray, most: int = 3) -> List[Collapse]:
    """Every k-for-1 replacement (2 ≤ k ≤ `most`) of the module docstring, per equation, sorted by ρ.
    theta [n, m]: the library on the samples; coefficients [d, m]: the current model; allowed [m]:
    the columns the search may use."""
    out: List[Collapse] = []
    norms = np.linalg.norm(theta, axis=0)
    unit = theta / np.where(norms > 0, norms, 1.0)
    for i in range(coefficients.shape[0]):
        sup = np.flatnonzero(coefficients[i])
        if len(sup) < 2:
            continue
        f = theta @ coefficients[i]
        size = float(f @ f)
        if size <= 0 or not np.isfinite(size):
            continue
        rss = _gram_rss(theta, f)
        for j in np.flatnonzero(allowed):
            if coefficients[i, j] != 0:
                continue
            current = [int(k) for k in sup]
            removed: List[int] = []
            for _ in range(min(most, len(sup))):
                # the chosen term whose removal (j kept) raises the residual least
                gone = min(current, key=lambda k: rss([c for c in current if c != k] + [int(j)]))
                current.remove(gone)
                removed.append(gone)
                if len(removed) < 2:
                    continue
                cols = current + [int(j)]
                new = np.zeros(theta.shape[1], dtype=bool)
                new[cols] = True
                start = np.zeros(theta.shape[1])
                w = np.linalg.lstsq(unit[:, cols], f, rcond=None)[0]
                start[cols] = w / np.where(norms[cols] > 0, norms[cols], 1.0)
                rho = float(np.sqrt(max(rss(cols), 0.0) / size))
                out.append(Collapse(i, int(j), tuple(removed), new, start, rho))
    return sorted(out, key=lambda c: c.rho)
