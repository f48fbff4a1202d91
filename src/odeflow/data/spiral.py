"""The seed 000 / DiffEqFlux spiral: du/dt = A^T u^3, A = [[-0.1, 2], [-2, -0.1]], u(0) = (2, 0)."""

from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor

from ..problems import SpiralField
from ..solve import solve
from ..solvers.stepping import Adaptive


def make_spiral(
    n_points: int = 30,
    t_end: float = 1.5,
    u0: Tuple[float, float] = (2.0, 0.0),
    noise: float = 0.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> Tuple[Tensor, Tensor]:
    """n_points equispaced samples on [0, t_end] of the spiral, solved with tsit5 at rtol 1e-10.

    Returns (t [n], u [n, 2]); optional Gaussian noise of std ``noise`` (seeded).
    """
    if n_points < 2 or t_end <= 0:
        raise ValueError(f"need n_points >= 2 and t_end > 0; got {n_points}, {t_end}")
    t = torch.linspace(0.0, t_end, n_points, dtype=torch.float64)
    u = solve(
        SpiralField(), torch.tensor(u0, dtype=torch.float64), t, method="tsit5", step=Adaptive(rtol=1e-10, atol=1e-12)
    ).ys
    if noise > 0:
        gen = torch.Generator().manual_seed(seed)
        u = u + noise * torch.randn(u.shape, generator=gen, dtype=torch.float64)
    return t.to(dtype), u.to(dtype)
