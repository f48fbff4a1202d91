"""Latent ODE (Rubanova et al. 2019; Chen et al. 2018; seed 002 eqs. 31-34).

    q(z0 | x) = N(mu, diag sigma^2),  (mu, sigma) = head(h),  h = encoder run backwards in time
    dz/dt = f_theta(z),  z(t0) = z0,   x_i ~ N(W z(t_i) + b, s^2)   (masked: only observed entries)

Encoder: ODE-RNN (default) or RNN (GRU with Δt input, the Chen et al. variant).
Poisson process (eqs. 33-34): per variable an intensity λ_d(t) = exp(g_psi(z(t)))_d, and
Λ_d(t) = ∫_{t0}^t λ_d ds is one more ODE state, solved jointly with z:
    d(z, Λ)/dt = (f_theta(z), λ(z)),   log p(times) = Σ_{i,d} m_id log λ_d(t_i) - Σ_d Λ_d(t_end).
Shapes: K samples of z0 for B series, latent L, D variables, grid of T times: the union grid
times [T], or each series on its own times [B, T] (with `lengths`, `data.irregular.collate_rows`;
adaptive solvers only), where every row is solved on its own steps (`latent_rows`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .latent_rows import JointPoissonField, decode_rows
from .ode_solver import ODESolver, disc_opt
from .odernn import ODERNN, check_series
from .timeseries import VectorFieldMLP

ENCODERS = ("ode-rnn", "rnn")


@dataclass
class LatentOutput:
    """mean: predicted x̂ [K, B, T, D]; z: latent paths [T, K, B, L]; q_mean, q_std: [B, L];
    z0: the samples [K, B, L]; log_intensity: log λ [K, B, T, D] and integral: Λ(t_end) [K, B, D]
    (None without the Poisson process)."""

    mean: Tensor
    z: Tensor
    q_mean: Tensor
    q_std: Tensor
    z0: Tensor
    log_intensity: Optional[Tensor] = None
    integral: Optional[Tensor] = None


class _PoissonField(nn.Module):
    """(z, Λ) -> (f(z), exp(g(z))): the latent field with the intensity integral appended."""

    def __init__(self, field: nn.Module, intensity: nn.Module) -> None:
        super().__init__()
        self.field, self.intensity = field, intensity

    def forward(self, t: Tensor, state: Tuple[Tensor, Tensor]) -> Tuple[Tensor, Tensor]:
        z = state[0]
        return self.field(t, z), torch.exp(self.intensity(z))


class LatentODE(nn.Module):
    def __init__(
        self,
        input_dim: int,
        latent_dim: int = 6,
        rec_hidden: int = 20,
        field_hidden: int = 50,
        encoder: str = "ode-rnn",
        poisson: bool = False,
        decoder_solver: Optional[ODESolver] = None,
        encoder_solver: Optional[ODESolver] = None,
    ) -> None:
        super().__init__()
        if encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {encoder!r}; valid: {', '.join(ENCODERS)}")
        self.input_dim, self.latent_dim, self.poisson = input_dim, latent_dim, poisson
        self.encoder_kind = encoder
        if encoder == "ode-rnn":
            rec_field = VectorFieldMLP(rec_hidden, hidden=(field_hidden,), activation="tanh", transform="identity")
            self.encoder = ODERNN(input_dim, rec_hidden, rec_field, solver=encoder_solver)
        else:
            self.encoder = ODERNN(input_dim, rec_hidden, None, delta_t_input=True, update_every_time=True)
        self.head = nn.Sequential(nn.Linear(rec_hidden, 50), nn.Tanh(), nn.Linear(50, 2 * latent_dim))
        self.field = VectorFieldMLP(
            latent_dim, hidden=(field_hidden, field_hidden), activation="tanh", transform="identity"
        )
        self.decoder = nn.Linear(latent_dim, input_dim)
        self.intensity = (
            nn.Sequential(nn.Linear(latent_dim, field_hidden), nn.Tanh(), nn.Linear(field_hidden, input_dim))
            if poisson
            else None
        )
        self.solver = decoder_solver or disc_opt("rk4", h=0.1)

    def posterior(
        self,
        times: Tensor,
        values: Tensor,
        mask: Tensor,
        t0: Optional[Tensor] = None,
        lengths: Optional[Tensor] = None,
    ) -> Tuple[Tensor, Tensor]:
        """q(z0|x): mean and std [B, L], from the encoder run backwards from t_T to t0 (times [T],
        or [B, N] with `lengths` and t0 [B]: each series from its own last time to its t0)."""
        t0 = times[..., 0] if t0 is None else t0
        h = self.encoder(times, values, mask, reverse=True, t0=t0, lengths=lengths).final
        mean, raw = self.head(h).chunk(2, dim=-1)
        return mean, F.softplus(raw) + 1e-4

    def decode(
        self, z0: Tensor, times: Tensor, t0: Optional[Tensor] = None, lengths: Optional[Tensor] = None
    ) -> Tuple[Tensor, Tensor, Optional[Tensor], Optional[Tensor]]:
        """From z0 [..., L] at t0 (default times[0]) to x̂ [..., T, D], z [T, ..., L] and, with the
        Poisson process, log λ [..., T, D] and Λ(t_T) - Λ(t_first) [..., D]. times [B, T]: each
        series on its own times (z0 [K, B, L] or [B, L], t0 [B]; Λ up to each row's own last time
        lengths[b] - 1)."""
        if times.dim() == 2:
            return self._decode_rows(z0, times, t0, lengths)
        grid = times if t0 is None or bool(t0 == times[0]) else torch.cat([t0.reshape(1), times])
        skip = grid.shape[0] - times.shape[0]
        log_intensity: Optional[Tensor] = None
        integral: Optional[Tensor] = None
        if self.poisson:
            intensity = self.intensity
            assert intensity is not None  # built with poisson=True
            lam0 = z0.new_zeros(*z0.shape[:-1], self.input_dim)
            z, big_lambda = self.solver(_PoissonField(self.field, intensity), (z0, lam0), grid)
            z, big_lambda = z[skip:], big_lambda[skip:]
            log_intensity = intensity(z).movedim(0, -2)
            integral = big_lambda[-1] - big_lambda[0]
        else:
            solved = self.solver(self.field, z0, grid)
            assert isinstance(solved, Tensor)  # a tensor state in, a tensor trajectory out
            z = solved[skip:]
        mean = self.decoder(z).movedim(0, -2)
        return mean, z, log_intensity, integral

    def _decode_rows(
        self, z0: Tensor, times: Tensor, t0: Optional[Tensor], lengths: Optional[Tensor]
    ) -> Tuple[Tensor, Tensor, Optional[Tensor], Optional[Tensor]]:
        """`decode` with each series on its own times [B, T] (Λ from the row's first time to its last)."""
        if not self.poisson:
            z = decode_rows(self.solver, self.field, z0, times, t0)
            return self.decoder(z).movedim(0, -2), z, None, None
        assert self.intensity is not None  # built with poisson=True
        s0 = torch.cat([z0, z0.new_zeros(*z0.shape[:-1], self.input_dim)], dim=-1)
        s = decode_rows(self.solver, JointPoissonField(self.field, self.intensity, self.latent_dim), s0, times, t0)
        z, big_lambda = s[..., : self.latent_dim], s[..., self.latent_dim :]
        log_intensity = self.intensity(z).movedim(0, -2)
        last = big_lambda[-1]
        if lengths is not None:  # Λ at each row's own last time, not at its padding
            idx = (lengths.to(z.device) - 1).reshape(1, *([1] * (z.dim() - 3)), -1, 1)
            last = big_lambda.gather(0, idx.expand(1, *big_lambda.shape[1:])).squeeze(0)
        return self.decoder(z).movedim(0, -2), z, log_intensity, last - big_lambda[0]

    def forward(
        self,
        times: Tensor,
        values: Tensor,
        mask: Tensor,
        n_samples: int = 1,
        predict_times: Optional[Tensor] = None,
        sample: bool = True,
        lengths: Optional[Tensor] = None,
        predict_lengths: Optional[Tensor] = None,
    ) -> LatentOutput:
        """Encode (values, mask) on `times`, draw K = n_samples z0 (reparameterised; the mean when
        sample=False) and decode at predict_times (default: times). t0 = the earlier first time
        (per row for times [B, N] with `lengths`; predict_times then [B, T'] with predict_lengths)."""
        check_series(times, values, mask, lengths)
        predict_times = times if predict_times is None else predict_times
        if predict_times.dim() != times.dim():
            raise ValueError(
                f"predict_times {tuple(predict_times.shape)} must be laid out as times {tuple(times.shape)}: "
                "both [T] (union grid) or both [B, N] (each series its own times)"
            )
        t0 = torch.minimum(times[..., 0], predict_times[..., 0])
        q_mean, q_std = self.posterior(times, values, mask, t0, lengths)
        eps = torch.randn(n_samples, *q_mean.shape, dtype=q_mean.dtype, device=q_mean.device)
        z0 = q_mean + q_std * eps if sample else q_mean.expand(n_samples, *q_mean.shape)
        mean, z, log_intensity, integral = self.decode(
            z0, predict_times, t0, lengths if predict_times is times else predict_lengths
        )
        return LatentOutput(mean, z, q_mean, q_std, z0, log_intensity, integral)
