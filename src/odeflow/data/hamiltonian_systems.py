"""Trajectories of simple Hamiltonian systems, z = [q, p] (one degree of freedom, m = l = g = k = 1).

    pendulum:      H = p²/2 + (1 − cos q)     dq/dt = p, dp/dt = −sin q
    mass-spring:   H = p²/2 + q²/2            dq/dt = p, dp/dt = −q

Initial states are drawn with energies in a range (so every trajectory oscillates, none goes
over the top of the pendulum), solved with dopri5 at rtol 1e-10 in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, Tuple

import torch
from torch import Tensor

from ..solve import solve
from ..solvers.stepping import Adaptive


@dataclass(frozen=True)
class HamiltonianSystem:
    name: str
    energy: Callable[[Tensor], Tensor]  # z [..., 2] -> [...]
    field: Callable[[Tensor, Tensor], Tensor]  # f(t, z)
    potential_inverse: Callable[[float], float]  # V(q) = E -> q >= 0 (turning point)
    energy_range: Tuple[float, float]


def _pendulum_energy(z: Tensor) -> Tensor:
    return 0.5 * z[..., 1] ** 2 + 1 - torch.cos(z[..., 0])


def _pendulum_field(t: Tensor, z: Tensor) -> Tensor:
    return torch.stack([z[..., 1], -torch.sin(z[..., 0])], dim=-1)


def _spring_energy(z: Tensor) -> Tensor:
    return 0.5 * (z[..., 0] ** 2 + z[..., 1] ** 2)


def _spring_field(t: Tensor, z: Tensor) -> Tensor:
    return torch.stack([z[..., 1], -z[..., 0]], dim=-1)


HAMILTONIAN_SYSTEMS: Dict[str, HamiltonianSystem] = {
    "pendulum": HamiltonianSystem(
        "pendulum", _pendulum_energy, _pendulum_field, lambda e: math.acos(1 - e), (0.1, 1.2)
    ),
    "mass-spring": HamiltonianSystem(
        "mass-spring", _spring_energy, _spring_field, lambda e: math.sqrt(2 * e), (0.1, 1.2)
    ),
}


def get_hamiltonian_system(name: str) -> HamiltonianSystem:
    if name not in HAMILTONIAN_SYSTEMS:
        raise ValueError(f"unknown Hamiltonian system {name!r}; valid: {', '.join(sorted(HAMILTONIAN_SYSTEMS))}")
    return HAMILTONIAN_SYSTEMS[name]


def hamiltonian_initial_states(system: str, n: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> Tensor:
    """n states [n, 2] with energies uniform in the system's range and a uniform phase."""
    sys_ = get_hamiltonian_system(system)
    if n < 1:
        raise ValueError(f"n must be >= 1; got {n}")
    gen = torch.Generator().manual_seed(seed)
    lo, hi = sys_.energy_range
    energies = lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)
    phase = 2 * math.pi * torch.rand(n, generator=gen, dtype=torch.float64)
    # a point on the level set H = E: q = s·q_max, p from the energy (s = cos(phase))
    q_max = torch.tensor([sys_.potential_inverse(float(e)) for e in energies], dtype=torch.float64)
    q = q_max * torch.cos(phase)
    z = torch.stack([q, torch.zeros_like(q)], dim=-1)
    kinetic = (energies - sys_.energy(z)).clamp_min(0)
    p = torch.sqrt(2 * kinetic) * torch.sign(torch.sin(phase))
    return torch.stack([q, p], dim=-1).to(dtype)


def hamiltonian_trajectories(
    system: str, n: int, t: Tensor, noise: float = 0.0, seed: int = 0, dtype: torch.dtype = torch.float32
) -> Tuple[Tensor, Tensor]:
    """(z [len(t), n, 2] observed with Gaussian noise of std ``noise``, clean z [len(t), n, 2])."""
    sys_ = get_hamiltonian_system(system)
    if noise < 0:
        raise ValueError(f"noise must be >= 0; got {noise}")
    z0 = hamiltonian_initial_states(system, n, seed)
    clean = solve(sys_.field, z0, t.to(torch.float64), method="dopri5", step=Adaptive(rtol=1e-10, atol=1e-12)).ys
    gen = torch.Generator().manual_seed(seed + 1)
    noisy = clean + noise * torch.randn(clean.shape, generator=gen, dtype=torch.float64)
    return noisy.to(dtype), clean.to(dtype)
