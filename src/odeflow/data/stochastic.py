"""Paths of simple SDEs for neural-SDE examples (Euler–Maruyama on a fine grid, seeded).

ornstein-uhlenbeck:  dx = θ (m − x) dt + σ dW      θ = 1, m = 1, σ = 0.3, x0 = 0
    mean m(1 − e^{−θt}), variance σ²/(2θ) (1 − e^{−2θt}) (closed form, for checks)
double-well:         dx = (x − x³) dt + σ dW        σ = 0.5, x0 = 0 (splits towards ±1)
"""

from __future__ import annotations

import math
from typing import Dict, Tuple

import torch
from torch import Tensor

SDE_SYSTEMS: Dict[str, Tuple[float, ...]] = {"ornstein-uhlenbeck": (1.0, 1.0, 0.3, 0.0), "double-well": (0.5, 0.0)}


def sde_paths(
    name: str, n: int, t: Tensor, seed: int = 0, substeps: int = 20, dtype: torch.dtype = torch.float32
) -> Tensor:
    """n paths [len(t), n, 1] at times t, each interval split into ``substeps`` Euler–Maruyama steps."""
    if name not in SDE_SYSTEMS:
        raise ValueError(f"unknown SDE system {name!r}; valid: {', '.join(sorted(SDE_SYSTEMS))}")
    if n < 1 or substeps < 1:
        raise ValueError(f"need n >= 1 and substeps >= 1; got {n}, {substeps}")
    gen = torch.Generator().manual_seed(seed)
    tt = t.to(torch.float64)
    if name == "ornstein-uhlenbeck":
        theta, m, sigma, x0 = SDE_SYSTEMS[name]
        drift = lambda x: theta * (m - x)  # noqa: E731
    else:
        sigma, x0 = SDE_SYSTEMS[name]
        drift = lambda x: x - x**3  # noqa: E731
    x = torch.full((n, 1), x0, dtype=torch.float64)
    out = [x]
    for a, b in zip(tt[:-1].tolist(), tt[1:].tolist()):
        h = (b - a) / substeps
        for _ in range(substeps):
            x = x + drift(x) * h + sigma * math.sqrt(h) * torch.randn(x.shape, generator=gen, dtype=torch.float64)
        out.append(x)
    return torch.stack(out).to(dtype)


def ou_moments(t: Tensor) -> Tuple[Tensor, Tensor]:
    """Exact mean and std of the Ornstein–Uhlenbeck paths above at times t."""
    theta, m, sigma, x0 = SDE_SYSTEMS["ornstein-uhlenbeck"]
    tt = t.to(torch.float64)
    mean = m + (x0 - m) * torch.exp(-theta * tt)
    std = torch.sqrt(sigma**2 / (2 * theta) * (1 - torch.exp(-2 * theta * tt)))
    return mean, std
