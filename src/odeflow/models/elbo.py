"""The latent-ODE objective: ELBO (seed 002 eq. 32), its IWAE variant, KL annealing, Poisson term.

    ELBO = E_q[ Σ_{i,d} m_id log N(x_id | x̂_id, s^2) ] - β KL(q(z0|x) || N(0, I))     (eq. 32)

with the expectation over K samples of z0 and β ∈ [0, 1] the annealed KL weight. IWAE (Burda et
al. 2016), with the same β on the prior/posterior ratio:

    IWAE_K = log (1/K) Σ_k exp( log p(x|z_k) + β (log p(z_k) - log q(z_k|x)) ).

All terms are per series ([B] or [K, B]); only observed entries (mask 1) contribute.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def masked_gaussian_log_likelihood(x: Tensor, mean: Tensor, std: float, mask: Tensor) -> Tensor:
    """Σ over time and variables of m · log N(x | mean, std^2); x, mean, mask [..., T, D] -> [...].
    Unobserved entries contribute exactly 0 (their x may be anything, NaN included)."""
    if std <= 0:
        raise ValueError(f"observation std must be > 0; got {std}")
    x = torch.where(mask > 0, x, mean.detach())
    logp = -0.5 * ((x - mean) / std) ** 2 - math.log(std) - 0.5 * math.log(2 * math.pi)
    return (logp * mask).sum(dim=(-1, -2))


def masked_mse(x: Tensor, pred: Tensor, mask: Tensor) -> Tensor:
    """Mean of (x - pred)^2 over observed entries (a scalar); NaN-safe for unobserved x."""
    x = torch.where(mask > 0, x, pred.detach())
    n = mask.sum()
    if float(n) == 0:
        raise ValueError("masked_mse: the mask selects no entries (nothing to evaluate)")
    return (((x - pred) ** 2) * mask).sum() / n


def kl_normal_standard(mean: Tensor, std: Tensor) -> Tensor:
    """KL(N(mean, diag std^2) || N(0, I)) = ½ Σ (mean² + std² - 1 - 2 log std), [B, L] -> [B]."""
    return 0.5 * (mean**2 + std**2 - 1.0 - 2.0 * torch.log(std)).sum(-1)


def log_normal(z: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """log N(z | mean, diag std^2) summed over the last dimension."""
    return (-0.5 * ((z - mean) / std) ** 2 - torch.log(std) - 0.5 * math.log(2 * math.pi)).sum(-1)


def poisson_log_likelihood(log_intensity: Tensor, integral: Tensor, mask: Tensor) -> Tensor:
    """Σ_{i,d} m_id log λ_d(t_i) - Σ_d Λ_d (eq. 34's timing factor); log_intensity [..., T, D],
    integral [..., D], mask [B, T, D] -> [...]."""
    return (log_intensity * mask).sum(dim=(-1, -2)) - integral.sum(-1)


def elbo(log_lik: Tensor, kl: Tensor, kl_weight: float = 1.0) -> Tensor:
    """Mean over series of (1/K) Σ_k log p(x|z_k) - β KL; log_lik [K, B], kl [B] -> scalar."""
    return (log_lik.mean(0) - kl_weight * kl).mean()


def iwae(log_lik: Tensor, z0: Tensor, mean: Tensor, std: Tensor, kl_weight: float = 1.0) -> Tensor:
    """Mean over series of the importance-weighted bound; log_lik [K, B], z0 [K, B, L]."""
    zeros = torch.zeros_like(mean)
    log_ratio = log_normal(z0, zeros, torch.ones_like(std)) - log_normal(z0, mean, std)
    k = log_lik.shape[0]
    return (torch.logsumexp(log_lik + kl_weight * log_ratio, dim=0) - math.log(k)).mean()


def kl_weight(iteration: int, warmup: int = 0, rate: float = 0.99) -> float:
    """KL annealing (Rubanova et al.): 0 for the first `warmup` iterations, then 1 - rate^(i - warmup)."""
    if not 0 <= rate < 1:
        raise ValueError(f"annealing rate must be in [0, 1); got {rate}")
    if iteration < warmup:
        return 0.0
    return 1.0 - rate ** (iteration - warmup)
