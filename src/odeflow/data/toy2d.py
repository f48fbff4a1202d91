"""The 2-D toy densities of FFJORD (Grathwohl et al. 2019), seeded; formulas in REFERENCE.md.

circles, moons and swissroll follow scikit-learn's generator definitions (reimplemented here
so scikit-learn is not needed).
"""

from __future__ import annotations

import threading
from typing import Callable, Dict

import numpy as np
import torch
from torch import Tensor


def _eight_gaussians(rng: np.random.RandomState, n: int) -> np.ndarray:
    s = 1.0 / np.sqrt(2)
    centers = 4.0 * np.array([(1, 0), (-1, 0), (0, 1), (0, -1), (s, s), (s, -s), (-s, s), (-s, -s)])
    idx = rng.randint(8, size=n)
    return (centers[idx] + 0.5 * rng.randn(n, 2)) / 1.414


def _checkerboard(rng: np.random.RandomState, n: int) -> np.ndarray:
    x1 = rng.rand(n) * 4 - 2
    x2_ = rng.rand(n) - rng.randint(0, 2, n) * 2
    x2 = x2_ + (np.floor(x1) % 2)
    return np.stack([x1, x2], axis=1) * 2


def _two_spirals(rng: np.random.RandomState, n: int) -> np.ndarray:
    m = n // 2
    k = np.sqrt(rng.rand(m, 1)) * 540 * (2 * np.pi) / 360
    d1x = -np.cos(k) * k + rng.rand(m, 1) * 0.5
    d1y = np.sin(k) * k + rng.rand(m, 1) * 0.5
    d = np.vstack((np.hstack((d1x, d1y)), np.hstack((-d1x, -d1y)))) / 3
    d = d + rng.randn(*d.shape) * 0.1
    return _fill(rng, d, n)


def _rings(rng: np.random.RandomState, n: int) -> np.ndarray:
    per = [n // 4 + (1 if i < n % 4 else 0) for i in range(4)]
    parts = []
    for radius, m in zip((1.0, 0.75, 0.5, 0.25), per):
        ang = np.linspace(0, 2 * np.pi, m, endpoint=False)
        parts.append(radius * np.stack([np.cos(ang), np.sin(ang)], axis=1))
    x = np.concatenate(parts) * 3.0
    x = x + rng.normal(scale=0.08, size=x.shape)
    return x[rng.permutation(n)]


def _circles(rng: np.random.RandomState, n: int) -> np.ndarray:
    n_out = n // 2
    n_in = n - n_out
    a_out = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    a_in = np.linspace(0, 2 * np.pi, n_in, endpoint=False)
    x = np.concatenate([np.stack([np.cos(a_out), np.sin(a_out)], 1), 0.5 * np.stack([np.cos(a_in), np.sin(a_in)], 1)])
    x = x + rng.normal(scale=0.08, size=x.shape)
    return x[rng.permutation(n)] * 3


def _moons(rng: np.random.RandomState, n: int) -> np.ndarray:
    n_out = n // 2
    n_in = n - n_out
    a_out = np.linspace(0, np.pi, n_out)
    a_in = np.linspace(0, np.pi, n_in)
    x = np.concatenate(
        [np.stack([np.cos(a_out), np.sin(a_out)], 1), np.stack([1 - np.cos(a_in), 1 - np.sin(a_in) - 0.5], 1)]
    )
    x = x + rng.normal(scale=0.1, size=x.shape)
    return x[rng.permutation(n)] * 2 + np.array([-1.0, -0.2])


def _swissroll(rng: np.random.RandomState, n: int) -> np.ndarray:
    t = 1.5 * np.pi * (1 + 2 * rng.rand(n))
    x = np.stack([t * np.cos(t), 21 * rng.rand(n), t * np.sin(t)], axis=1)
    x = x + rng.normal(scale=1.0, size=x.shape)
    return x[:, [0, 2]] / 5.0


def _pinwheel(rng: np.random.RandomState, n: int) -> np.ndarray:
    arms, per = 5, n // 5
    rads = np.linspace(0, 2 * np.pi, arms, endpoint=False)
    feats = rng.randn(arms * per, 2) * np.array([0.3, 0.1])
    feats[:, 0] += 1.0
    labels = np.repeat(np.arange(arms), per)
    ang = rads[labels] + 0.25 * np.exp(feats[:, 0])
    rot = np.stack([np.cos(ang), -np.sin(ang), np.sin(ang), np.cos(ang)]).T.reshape(-1, 2, 2)
    x = 2 * np.einsum("ti,tij->tj", feats, rot)
    return _fill(rng, x[rng.permutation(len(x))], n)


def _fill(rng: np.random.RandomState, x: np.ndarray, n: int) -> np.ndarray:
    """Generators that make whole groups: top up (or cut) to exactly n points."""
    if len(x) >= n:
        return x[:n]
    return np.concatenate([x, x[rng.randint(len(x), size=n - len(x))]])


TOY_DATASETS: Dict[str, Callable[[np.random.RandomState, int], np.ndarray]] = {
    "8gaussians": _eight_gaussians,
    "checkerboard": _checkerboard,
    "rings": _rings,
    "2spirals": _two_spirals,
    "circles": _circles,
    "moons": _moons,
    "pinwheel": _pinwheel,
    "swissroll": _swissroll,
}


def sample_toy(name: str, n: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> Tensor:
    """n samples [n, 2] of a toy density, reproducible for a given seed."""
    if name not in TOY_DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(sorted(TOY_DATASETS))}")
    if n < 1:
        raise ValueError(f"need n >= 1 samples; got {n}")
    return torch.as_tensor(TOY_DATASETS[name](_seeded(seed), n), dtype=dtype)


_RNG = threading.local()


def _seeded(seed: int) -> np.random.RandomState:
    """This thread's RandomState reseeded: the stream of np.random.RandomState(seed) (seed()
    resets the whole legacy state), without building a new generator per batch (~0.2 ms)."""
    rng = getattr(_RNG, "rng", None)
    if rng is None:
        rng = _RNG.rng = np.random.RandomState()
    rng.seed(seed)
    return rng
