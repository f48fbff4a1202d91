"""Weak-form SINDy (Messenger & Bortz 2021, "Weak SINDy"), a baseline for noisy irregular data.

No derivatives are estimated: with compactly supported test functions φ_k on [a_k, b_k],
integration by parts turns ẋ = Θ(x) ξ into

    −∫ φ_k'(t) x(t) dt = ∫ φ_k(t) Θ(x(t)) dt ξ,      φ_k(t) = ((t − a_k)(b_k − t))^p,

one row per test function; integrals by product integration on the (irregular) observation times
(x and Θ(x) linear between observations, φ_k and φ_k' integrated exactly against that), each
row scaled by 1/∫φ_k, and x replaced by x − x̄_k (x̄_k its φ_k-weighted mean) in the left side,
which is exact because ∫φ_k' = 0 but removes the quadrature error of ∫φ_k' times a large mean.
Noise enters only through integrals, which average it.
(pysindy 2.1's WeakPDELibrary, given the same 1-D irregular time grid, returned all-zero models even on
clean data in this setup, so the benchmark uses this implementation.)
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

from .library import Library, LibrarySpec


def weak_system(
    t: np.ndarray,
    x: np.ndarray,
    variables: Sequence[str],
    degree: int = 3,
    n_test: int = 100,
    points_per_window: int = 16,
    p: int = 4,
    library: Optional[Library] = None,
    u: Optional[np.ndarray] = None,
) -> Tuple[np.ndarray, np.ndarray, List[str], np.ndarray]:
    """(G [K, m], b [K, d], term names, window centres [K]) of the weak form for one trajectory;
    library: the terms (default the polynomials of `degree`), u [n, p]: its control inputs."""
    t = np.asarray(t, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    n = len(t)
    if n < 8:
        raise ValueError(f"weak-form SINDy needs at least 8 observations; got {n}")
    lib = library if library is not None else LibrarySpec(degree=degree).build(variables)
    theta, terms = lib.numpy(x, u), lib.terms
    span = t[-1] - t[0]
    half = 0.5 * span * min(1.0, points_per_window / n)
    centres = np.linspace(t[0] + half, t[-1] - half, n_test)
    # product integration: ∫ ψ(t) g(t) dt with g linear between observations, ψ = φ or φ' evaluated
    # exactly enough by 5-point Gauss–Legendre on each interval (φ is a polynomial of degree 2p)
    nodes, weights = np.polynomial.legendre.leggauss(5)
    s_q = 0.5 * (nodes + 1)
    om = 0.5 * weights
    h = np.diff(t)
    tq = t[:-1, None] + h[:, None] * s_q[None, :]  # [n-1, 5]
    rows_g, rows_b = [], []
    for c in centres:
        a, b = c - half, c + half
        inside = (tq > a) & (tq < b)
        u = np.where(inside, (tq - a) * (b - tq), 0.0)
        phi_q = u**p
        dphi_q = np.where(inside, p * u ** (p - 1) * (a + b - 2 * tq), 0.0)
        w_phi, w_dphi = np.zeros(n), np.zeros(n)
        for w, f in ((w_phi, phi_q), (w_dphi, dphi_q)):
            left = (f * om * (1 - s_q)).sum(axis=1) * h
            right = (f * om * s_q).sum(axis=1) * h
            w[:-1] += left
            w[1:] += right
        scale = float(w_phi.sum()) or 1.0
        rows_g.append(w_phi @ theta / scale)
        # ∫φ' = 0 exactly; subtracting the window's mean state removes what is left of the
        # quadrature error of ∫φ' times a large mean
        centre_state = w_phi @ x / scale
        rows_b.append(-w_dphi @ (x - centre_state) / scale)
    return np.array(rows_g), np.array(rows_b), terms, centres
