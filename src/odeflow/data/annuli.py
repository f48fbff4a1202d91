"""Concentric annuli: the 2-D (or d-D) toy of Dupont et al. 2019 (Augmented Neural ODEs, §4.1).

    g(x) = -1 if |x| <= r1,   g(x) = +1 if r2 <= |x| <= r3        (r1 < r2 < r3)
Here the labels are 0 (inner ball) and 1 (outer shell). As in the paper's code, a point is a
uniform random direction times a radius drawn uniformly from the class's range, half the
points in each class. A neural ODE's flow is a homeomorphism of R^d that keeps the inner ball
enclosed by the shell, so no linear head on its output can separate them: the nested
classes need augmentation (or a non-ODE map).
"""

from __future__ import annotations

from typing import Tuple

import numpy as np
import torch
from torch import Tensor


def make_annuli(
    n: int, seed: int = 0, r1: float = 0.5, r2: float = 1.0, r3: float = 1.5, dim: int = 2
) -> Tuple[Tensor, Tensor]:
    """n points -> (x float32 [n, dim], y int64 [n]); y = 0 for |x| <= r1, 1 for r2 <= |x| <= r3."""
    if not (isinstance(n, int) and n >= 2):
        raise ValueError(f"n must be an integer >= 2 (one point per class at least); got {n!r}")
    if not (0 < r1 < r2 < r3):
        raise ValueError(f"radii must satisfy 0 < r1 < r2 < r3; got r1={r1}, r2={r2}, r3={r3}")
    if not (isinstance(dim, int) and dim >= 1):
        raise ValueError(f"dim must be an integer >= 1; got {dim!r}")
    rng = np.random.RandomState(seed)
    n_in = n // 2
    y = np.concatenate([np.zeros(n_in, dtype=np.int64), np.ones(n - n_in, dtype=np.int64)])
    direction = rng.randn(n, dim)
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    radius = np.where(y == 0, rng.uniform(0.0, r1, n), rng.uniform(r2, r3, n))
    x = direction * radius[:, None]
    order = rng.permutation(n)
    return torch.from_numpy(x[order].astype(np.float32)), torch.from_numpy(y[order])
