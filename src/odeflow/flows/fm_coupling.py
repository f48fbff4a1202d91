"""Couplings of data and noise within a minibatch for conditional flow matching.

independent:  (x_i, z_i) as drawn (Lipman et al. 2023).
minibatch-ot: z permuted by the exact optimal assignment for the squared Euclidean cost
              C_ij = ||x_i - z_j||^2 (Tong et al. 2024, OT-CFM; equal batch sizes, so the OT plan
              is a permutation). The assignment is scipy's `linear_sum_assignment`.
"""

from __future__ import annotations

import torch
from torch import Tensor

COUPLINGS = ("independent", "minibatch-ot")


def assignment_solver():
    """scipy's linear_sum_assignment, with a clear error where scipy is missing."""
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError:  # pragma: no cover - scipy is installed with the test/bench extras
        raise ImportError(
            "coupling 'minibatch-ot' needs scipy for the assignment: pip install scipy (or use coupling 'independent')"
        ) from None
    return linear_sum_assignment


def ot_permutation(x: Tensor, z: Tensor) -> Tensor:
    """The permutation p minimising sum_i ||x_i - z_{p_i}||^2 (exact, scipy's Hungarian solver)."""
    linear_sum_assignment = assignment_solver()
    a = x.detach().reshape(x.shape[0], -1).double().cpu().numpy()
    b = z.detach().reshape(z.shape[0], -1).double().cpu().numpy()
    # ||a_i - b_j||^2 up to terms that do not change the optimal assignment: -2 a_i . b_j + |b_j|^2
    cost = (b * b).sum(axis=1)[None, :] - 2.0 * (a @ b.T)
    rows, cols = linear_sum_assignment(cost)
    perm = torch.empty(x.shape[0], dtype=torch.long)
    perm[torch.as_tensor(rows)] = torch.as_tensor(cols)
    return perm.to(z.device)


def couple(x: Tensor, z: Tensor, coupling: str) -> Tensor:
    """z reordered to pair with x under the coupling."""
    if coupling == "independent":
        return z
    if coupling == "minibatch-ot":
        return z[ot_permutation(x, z)]
    raise ValueError(f"unknown coupling {coupling!r}; valid: {', '.join(COUPLINGS)}")
