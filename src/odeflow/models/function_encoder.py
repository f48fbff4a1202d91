"""Function encoders with neural ODE bases (seed 002 eq. 35; Ingebrand et al. 2024).

K basis vector fields f_1..f_K (each an `odeflow.nn.ODENet`) are trained jointly on a family of
systems. A new system is encoded from demonstrations without gradient steps:

    velocities  v_j ≈ (z_{j+1} − z_j) / (t_{j+1} − t_j), evaluated at the midpoint of the step
    inner products (eq. 35)  α_i = E_j[ v_j · f_i(z_j) ]                      (= b_i)
    least squares            α = argmin E_j ‖v_j − Σ_i α_i f_i(z_j)‖² = (G + λI)⁻¹ b,
                             G_ik = E_j[ f_i(z_j) · f_k(z_j) ]

and the model predicts with dz/dt = Σ_i α_i f_i(z). Eq. 35 equals least squares when the basis
is orthonormal under this inner product (G = I); `gram` gives G so a training loss can push the
basis there. The basis here is autonomous (f_i(z)), as are the families it is meant for.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from ..gradients import DiscretizeOptimize, OptimizeDiscretize
from ..nn import ODENet
from ..solve import solve
from ..solvers.stepping import Adaptive, FixedStep

COEFFICIENT_METHODS = ("inner", "least_squares")


def finite_difference_velocities(t: Tensor, z: Tensor) -> Tuple[Tensor, Tensor]:
    """(midpoints [T−1, ..., d], velocities [T−1, ..., d]) of a series z [T, ..., d] at times t [T].

    The forward difference (z_{j+1} − z_j)/(t_{j+1} − t_j) is a second-order estimate of dz/dt at
    the midpoint (z_j + z_{j+1})/2, where it is paired with the basis evaluation.
    """
    if t.dim() != 1 or t.shape[0] != z.shape[0] or t.shape[0] < 2:
        raise ValueError(
            f"need times t [T] (T >= 2) and states z [T, ..., d]; got t {tuple(t.shape)}, z {tuple(z.shape)}"
        )
    dt = (t[1:] - t[:-1]).to(z.dtype)
    if not bool((dt > 0).all()):
        raise ValueError("times must be strictly increasing for finite-difference velocities")
    dz = z[1:] - z[:-1]
    return 0.5 * (z[1:] + z[:-1]), dz / dt.reshape(-1, *([1] * (z.dim() - 1)))


class FunctionEncoderODE(nn.Module):
    """K autonomous basis fields; coefficients from demonstrations; dz/dt = Σ α_i f_i(z)."""

    def __init__(self, dim: int, n_basis: int = 8, hidden: Sequence[int] = (64, 64), activation: str = "tanh") -> None:
        super().__init__()
        if n_basis < 1:
            raise ValueError(f"n_basis must be >= 1; got {n_basis}")
        self.dim, self.n_basis = dim, n_basis
        self.basis = nn.ModuleList(ODENet(dim, hidden, layer="ignore", activation=activation) for _ in range(n_basis))
        self.config = dict(dim=dim, n_basis=n_basis, hidden=list(hidden), activation=activation)

    def basis_fields(self, z: Tensor) -> Tensor:
        """[K, *z.shape]: every basis field at the points z [..., dim]."""
        if z.shape[-1] != self.dim:
            raise ValueError(f"states must end in dim={self.dim}; got shape {tuple(z.shape)}")
        flat = z.reshape(-1, self.dim)
        t0 = torch.zeros((), dtype=z.dtype, device=z.device)
        return torch.stack([f(t0, flat) for f in self.basis]).reshape(self.n_basis, *z.shape)

    def inner_products(self, z: Tensor, v: Tensor) -> Tuple[Tensor, Tensor]:
        """(G [..., K, K], b [..., K]) for demonstrations z, v of shape [..., P, dim] (P points each).

        b_i = mean_j v_j · f_i(z_j) (eq. 35), G_ik = mean_j f_i(z_j) · f_k(z_j).
        """
        if z.shape != v.shape or z.dim() < 2:
            raise ValueError(
                f"demonstration states and velocities must both be [..., points, dim]; "
                f"got {tuple(z.shape)} and {tuple(v.shape)}"
            )
        phi = self.basis_fields(z)  # [K, ..., P, d]
        b = torch.einsum("k...pd,...pd->...k", phi, v) / z.shape[-2]
        gram = torch.einsum("k...pd,l...pd->...kl", phi, phi) / z.shape[-2]
        return gram, b

    def coefficients(self, z: Tensor, v: Tensor, method: str = "least_squares", ridge: float = 1e-6) -> Tensor:
        """α [..., K] from demonstrations (states z and velocities v, each [..., P, dim])."""
        if method not in COEFFICIENT_METHODS:
            raise ValueError(f"unknown coefficient method {method!r}; valid: {', '.join(COEFFICIENT_METHODS)}")
        gram, b = self.inner_products(z, v)
        if method == "inner":
            return b
        eye = torch.eye(self.n_basis, dtype=gram.dtype, device=gram.device)
        return torch.linalg.solve(gram + ridge * eye, b.unsqueeze(-1)).squeeze(-1)

    def combined(self, z: Tensor, alpha: Tensor) -> Tensor:
        """Σ_i α_i f_i(z) for z [batch, dim] and α [K] or [batch, K]."""
        phi = self.basis_fields(z)
        if alpha.shape[-1] != self.n_basis or alpha.dim() not in (1, 2):
            raise ValueError(f"alpha must be [K] or [batch, K] with K={self.n_basis}; got {tuple(alpha.shape)}")
        if alpha.dim() == 1:
            return torch.einsum("k...,k->...", phi, alpha)
        return torch.einsum("kbd,bk->bd", phi, alpha)

    def field(self, alpha: Tensor) -> CombinedField:
        """The vector field dz/dt = Σ α_i f_i(z) as a module f(t, z) for odeflow.solve."""
        return CombinedField(self, alpha)

    def predict(
        self,
        z0: Tensor,
        t: Tensor,
        alpha: Tensor,
        method: str = "rk4",
        step: Optional[Union[FixedStep, Adaptive]] = None,
        gradient: Optional[Union[DiscretizeOptimize, OptimizeDiscretize]] = None,
    ) -> Tensor:
        """Trajectories [len(t), *z0.shape] of dz/dt = Σ α_i f_i(z) from z0 [batch, dim]."""
        return solve(self.field(alpha), z0, t, method=method, step=step, gradient=gradient).ys


class CombinedField(nn.Module):
    def __init__(self, encoder: FunctionEncoderODE, alpha: Tensor) -> None:
        super().__init__()
        self.encoder = encoder
        self.alpha = alpha

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        return self.encoder.combined(z, self.alpha)
