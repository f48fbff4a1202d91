"""A sparse polynomial field Θ_S(v) W evaluated with few tensor operations.

The fits on the observations integrate dx/dt = Ξ Θ(x) by rk4 through every observation interval,
four field evaluations per step, on small batches ([B, S, d]: B parameter probes, S segments); the
cost is the number of tensor operations, not their size. Each monomial of degree ≤ D used by the
support is written as a product of D factors taken from [1, v_1, …, v_n] (x² y = x · x · y), so

    Θ_S(v) = ∏_k F[..., a_k],   F = [1, v],   f = Θ_S(v) W

is one concatenation, one index_select, one product and one batched matrix product, whatever the
support (Library.evaluate builds every power of every variable and gathers them, ~25 operations).
Equal to it up to rounding (x³ as x·x·x instead of pow(x, 3)); tests compare the two. `numpy`
does the same on numpy arrays, for the integrations that need no autograd (the finite-difference
Jacobians and the Levenberg–Marquardt trial steps), where numpy's smaller per-call cost counts.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor


class PolynomialColumns:
    """Θ [..., m] of the monomials with exponent rows `powers` [m, n] (integers ≥ 0) of v [..., n]."""

    def __init__(self, powers: Sequence[Sequence[int]]) -> None:
        p = np.asarray(powers, dtype=np.int64).reshape(len(powers), -1)
        self.m, self.n = p.shape
        self.top = max(int(p.sum(axis=1).max()) if self.m else 0, 1)
        factors = np.zeros((self.m, self.top), dtype=np.int64)  # 0: the constant 1; i + 1: v_i
        for c, row in enumerate(p):
            f = [i + 1 for i in range(self.n) for _ in range(int(row[i]))]
            factors[c, : len(f)] = f
        self.factors = torch.as_tensor(factors.reshape(-1))
        self.factors_np = factors.T.reshape(-1)  # factor-major: [top, m] after the take
        self._ones: dict = {}

    def __call__(self, v: Tensor) -> Tensor:
        f = torch.cat([v.new_ones(v.shape[:-1] + (1,)), v], dim=-1)
        picked = f.index_select(-1, self.factors)
        if self.top == 1:
            return picked
        return picked.view(v.shape[:-1] + (self.m, self.top)).prod(dim=-1)

    def numpy(self, v: np.ndarray) -> np.ndarray:
        """The same columns for a numpy array v [..., n] (no autograd; numpy's per-call cost is lower)."""
        ones = self._ones.get(v.shape[:-1])
        if ones is None:
            ones = self._ones.setdefault(v.shape[:-1], np.ones(v.shape[:-1] + (1,)))
        picked = np.concatenate([ones, v], axis=-1).take(self.factors_np, axis=-1)
        picked = picked.reshape(v.shape[:-1] + (self.top, self.m))
        out = picked[..., 0, :]
        for k in range(1, self.top):  # (f0 f1) f2, as torch's prod (a numpy reduce costs more here)
            out = out * picked[..., k, :]
        return out
