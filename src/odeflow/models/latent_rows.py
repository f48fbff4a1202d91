"""The latent ODE's decoder with each series on its own times (no union grid of the batch).

z0 [K, B, L] starts at the row's own t0_b; z is solved on the row's own times [B, T] with its own
adaptive steps (`solve(..., per_sample=True)`, the K samples of a series as K rows with its
times). With the Poisson process (Rubanova et al. 2019, eqs. 33-34) the state is (z, Λ) as one
tensor [.., L + D]: d(z, Λ)/dt = (f_theta(z), exp(g_psi(z))).
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor, nn


class JointPoissonField(nn.Module):
    """s = (z, Λ) -> (f(z), exp(g(z))) on one tensor (per-row solves take one state tensor)."""

    def __init__(self, field: nn.Module, intensity: nn.Module, latent_dim: int) -> None:
        super().__init__()
        self.field, self.intensity, self.latent_dim = field, intensity, latent_dim

    def forward(self, t: Tensor, s: Tensor) -> Tensor:
        z = s[..., : self.latent_dim]
        return torch.cat([self.field(t, z), torch.exp(self.intensity(z))], dim=-1)


def start_rows(times: Tensor, t0: Tensor) -> Tuple[Tensor, Tensor]:
    """Each row's solve times [B, T + 1] from t0_b through its times and the column [B] where its
    first time is: rows with t0_b before their first time start there; the others (t0_b equal to
    it) run one padded time past their last one."""
    earlier = t0 < times[:, 0]
    if not bool(earlier.any()):
        return times, torch.zeros_like(earlier, dtype=torch.long)
    last = times[:, -1:]
    pad = last + 1e-5 * torch.maximum((last - times[:, :1]).abs(), torch.maximum(last.abs(), torch.ones_like(last)))
    grid = torch.where(earlier.unsqueeze(1), torch.cat([t0.unsqueeze(1), times], 1), torch.cat([times, pad], 1))
    return grid, earlier.long()


def decode_rows(solver, field: nn.Module, z0: Tensor, times: Tensor, t0: Optional[Tensor]) -> Tensor:
    """z [T, K, B, S] for z0 [K, B, S] (or [T, B, S] for z0 [B, S]) at t0 [B] (default times[:, 0])
    on times [B, T], each row of each sample on its own steps."""
    if z0.dim() == 2:
        return decode_rows(solver, field, z0.unsqueeze(0), times, t0).squeeze(1)
    K, B, S = z0.shape
    T = times.shape[1]
    t0 = times[:, 0] if t0 is None else t0.to(times.dtype).expand(B)
    grid, offset = start_rows(times, t0)
    solved = solver.rows(field, z0.reshape(K * B, S), grid.repeat(K, 1))  # [T + 1, K B, S]
    cols = torch.arange(T, device=times.device).unsqueeze(1) + offset.repeat(K).unsqueeze(0)  # [T, K B]
    z = solved.gather(0, cols.unsqueeze(-1).expand(T, K * B, S))
    return z.reshape(T, K, B, S)
