"""The periodic toy of the latent-ODE paper (Rubanova et al. 2019, §4.1), seed 002.

Every series is x(t) = a sin(2π f t + φ) + ε, ε ~ N(0, noise²), with amplitude a ~ U[a_lo, a_hi],
frequency f ~ U[f_lo, f_hi] and phase φ ~ U[0, 2π), on one irregular grid of `n_points` times
(t = 0 and n_points - 1 sorted U[0, t_max] draws) shared by the data set; tasks then observe
irregular subsets of it (data.irregular.split_interpolation / split_extrapolation).
"""

from __future__ import annotations

import math
from typing import List, Tuple

import torch

from .irregular import Series


def make_periodic(
    n_series: int,
    n_points: int = 100,
    t_max: float = 5.0,
    noise: float = 0.01,
    amplitude: Tuple[float, float] = (0.5, 1.5),
    frequency: Tuple[float, float] = (0.2, 0.6),
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> List[Series]:
    """n_series random sines on a shared irregular grid; deterministic given seed."""
    if n_series < 1 or n_points < 2:
        raise ValueError(f"need n_series >= 1 and n_points >= 2; got {n_series}, {n_points}")
    if t_max <= 0 or noise < 0:
        raise ValueError(f"need t_max > 0 and noise >= 0; got t_max={t_max}, noise={noise}")
    for name, (lo, hi) in (("amplitude", amplitude), ("frequency", frequency)):
        if not 0 <= lo <= hi:
            raise ValueError(f"{name} range must satisfy 0 <= low <= high; got {(lo, hi)}")
    g = torch.Generator().manual_seed(seed)
    rest = torch.sort(torch.rand(n_points - 1, generator=g, dtype=torch.float64) * t_max).values
    times = torch.cat([torch.zeros(1, dtype=torch.float64), rest])
    times = torch.unique(times)  # draws never repeat in practice; unique keeps the grid strict
    u = torch.rand(n_series, 3, generator=g, dtype=torch.float64)
    amp = amplitude[0] + (amplitude[1] - amplitude[0]) * u[:, 0:1]
    freq = frequency[0] + (frequency[1] - frequency[0]) * u[:, 1:2]
    phase = 2 * math.pi * u[:, 2:3]
    clean = amp * torch.sin(2 * math.pi * freq * times + phase)
    values = clean + noise * torch.randn(clean.shape, generator=g, dtype=torch.float64)
    ones = torch.ones(times.shape[0], 1, dtype=dtype)
    return [Series(times.to(dtype), values[i, :, None].to(dtype), ones, name=f"periodic-{i}") for i in range(n_series)]
