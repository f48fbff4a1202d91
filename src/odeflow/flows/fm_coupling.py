"""Couplings of data and noise within a minibatch for conditional flow matching.

independent:  (x_i, z_i) as drawn (Lipman et al. 2023).
minibatch-ot: z permuted by the exact optimal assignment for the squared Euclidean cost
              C_ij = ||x_i - z_j||^2 (Tong et al. 2024, OT-CFM; equal batch sizes, so the OT plan
              is a permutation). The assignment is POT's network simplex (`ot.emd`) where POT is
              installed (about twice as fast here on 256 x 256), else scipy's `linear_sum_assignment`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import Tensor

COUPLINGS = ("independent", "minibatch-ot")
BACKENDS = ("auto", "pot", "scipy")


def _pot(cost: np.ndarray) -> np.ndarray:
    import ot

    n = cost.shape[0]
    w = np.full(n, 1.0 / n)
    return ot.emd(w, w, cost).argmax(axis=1)  # a vertex of the Birkhoff polytope: a permutation


def _scipy(cost: np.ndarray) -> np.ndarray:
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(cost)
    perm = np.empty(cost.shape[0], dtype=np.int64)
    perm[rows] = cols
    return perm


def assignment_solver(backend: str = "auto") -> Callable[[np.ndarray], np.ndarray]:
    """cost [n, n] -> the optimal permutation, by POT or scipy; a clear error where neither is."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown assignment backend {backend!r}; valid: {', '.join(BACKENDS)}")
    if backend in ("auto", "pot"):
        try:
            import ot  # noqa: F401

            return _pot
        except ImportError:
            if backend == "pot":
                raise ImportError("assignment backend 'pot' needs POT: pip install pot") from None
    try:
        import scipy.optimize  # noqa: F401
    except ImportError:  # pragma: no cover - scipy is installed with the test/bench extras
        raise ImportError(
            "coupling 'minibatch-ot' needs POT or scipy for the assignment: pip install pot (or scipy), "
            "or use coupling 'independent'"
        ) from None
    return _scipy


def ot_permutation(x: Tensor, z: Tensor, backend: str = "auto") -> Tensor:
    """The permutation p minimising sum_i ||x_i - z_{p_i}||^2 (exact)."""
    solve = assignment_solver(backend)
    a = x.detach().reshape(x.shape[0], -1).double().cpu().numpy()
    b = z.detach().reshape(z.shape[0], -1).double().cpu().numpy()
    cost = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * (a @ b.T)
    return torch.as_tensor(solve(np.maximum(cost, 0.0))).to(z.device)


def couple(x: Tensor, z: Tensor, coupling: str) -> Tensor:
    """z reordered to pair with x under the coupling."""
    if coupling == "independent":
        return z
    if coupling == "minibatch-ot":
        return z[ot_permutation(x, z)]
    raise ValueError(f"unknown coupling {coupling!r}; valid: {', '.join(COUPLINGS)}")
