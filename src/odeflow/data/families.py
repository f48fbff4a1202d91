"""Families of 2-D dynamical systems for function encoders (seed 002 eq. 35).

    van-der-pol(μ):        x' = y,  y' = μ (1 − x²) y − x               μ in [0.5, 2.5] by default
    damped-oscillator(ω, ζ): x' = y,  y' = −ω² x − 2 ζ ω y              ω in [0.8, 1.6], ζ in [0.05, 0.4]

Each system of a family gets n trajectories from initial states uniform in [−2, 2]²; solved with
dopri5 at rtol 1e-9 in float64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Sequence, Tuple

import torch
from torch import Tensor

from ..solve import solve
from ..solvers.stepping import Adaptive


@dataclass(frozen=True)
class Family:
    name: str
    parameter_names: Tuple[str, ...]
    ranges: Tuple[Tuple[float, float], ...]
    field: Callable[[Tensor, Tensor], Tensor]  # (params [batch, p], z [batch, 2]) -> dz/dt


def _van_der_pol(params: Tensor, z: Tensor) -> Tensor:
    mu = params[:, 0]
    x, y = z[:, 0], z[:, 1]
    return torch.stack([y, mu * (1 - x * x) * y - x], dim=-1)


def _damped(params: Tensor, z: Tensor) -> Tensor:
    omega, zeta = params[:, 0], params[:, 1]
    x, y = z[:, 0], z[:, 1]
    return torch.stack([y, -omega * omega * x - 2 * zeta * omega * y], dim=-1)


FAMILIES: Dict[str, Family] = {
    "van-der-pol": Family("van-der-pol", ("mu",), ((0.5, 2.5),), _van_der_pol),
    "damped-oscillator": Family("damped-oscillator", ("omega", "zeta"), ((0.8, 1.6), (0.05, 0.4)), _damped),
}


def get_family(name: str) -> Family:
    if name not in FAMILIES:
        raise ValueError(f"unknown system family {name!r}; valid: {', '.join(sorted(FAMILIES))}")
    return FAMILIES[name]


def sample_parameters(family: str, m: int, seed: int = 0) -> Tensor:
    """m parameter vectors [m, p], uniform in the family's ranges."""
    fam = get_family(family)
    gen = torch.Generator().manual_seed(seed)
    lo = torch.tensor([r[0] for r in fam.ranges], dtype=torch.float64)
    hi = torch.tensor([r[1] for r in fam.ranges], dtype=torch.float64)
    return lo + (hi - lo) * torch.rand(m, len(fam.ranges), generator=gen, dtype=torch.float64)


def family_trajectories(
    family: str, params: Tensor, n: int, t: Tensor, seed: int = 0, box: float = 2.0, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Trajectories [len(t), m, n, 2] of the m systems params [m, p], n per system."""
    fam = get_family(family)
    params = torch.as_tensor(params, dtype=torch.float64)
    if params.dim() != 2 or params.shape[1] != len(fam.parameter_names):
        raise ValueError(
            f"{family} parameters must be [m, {len(fam.parameter_names)}] "
            f"({', '.join(fam.parameter_names)}); got {tuple(params.shape)}"
        )
    if n < 1:
        raise ValueError(f"n must be >= 1; got {n}")
    m = params.shape[0]
    gen = torch.Generator().manual_seed(seed)
    z0 = box * (2 * torch.rand(m * n, 2, generator=gen, dtype=torch.float64) - 1)
    per_row = params.repeat_interleave(n, dim=0)
    zs = solve(
        lambda t_, z: fam.field(per_row, z),
        z0,
        t.to(torch.float64),
        method="dopri5",
        step=Adaptive(rtol=1e-9, atol=1e-11),
    ).ys
    return zs.reshape(len(t), m, n, 2).to(dtype)


def parameter_grid(family: str, values: Sequence[Sequence[float]]) -> Tensor:
    """Explicit parameter vectors [m, p] (checked against the family's parameter count)."""
    fam = get_family(family)
    params = torch.tensor(values, dtype=torch.float64)
    if params.dim() != 2 or params.shape[1] != len(fam.parameter_names):
        raise ValueError(
            f"{family} takes {len(fam.parameter_names)} parameter(s) ({', '.join(fam.parameter_names)}) "
            f"per system; got values of shape {tuple(params.shape)}"
        )
    return params
