"""Neural SDEs dh = f_θ(h, t) dt + g_θ(h, t) dW (seed 002, "Extensions"; Li et al. 2020, Kidger et al. 2021).

Drift and diffusion are `odeflow.nn.ODENet`s; the diffusion is diagonal and positive
(softplus of the net's output, plus a floor). Paths are solved by `torchsde` (Itô, diagonal
noise; its adjoint with ``adjoint=True``), an optional dependency imported only when sampling.

Training target used here (no latent encoder): the observed paths' marginals. From M model
paths the mean μ(t) and variance σ²(t) are estimated per time and the loss is the Gaussian
negative log-likelihood of the observations under N(μ(t), σ²(t)) (`marginal_nll`).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from ..nn import ODENet

SDE_METHODS = ("euler", "milstein", "srk")


def import_torchsde():
    try:
        import torchsde
    except ImportError:
        raise ImportError("neural SDEs need torchsde: pip install 'odeflow[sde]' (or pip install torchsde)") from None
    return torchsde


class NeuralSDE(nn.Module):
    """Itô SDE with diagonal noise over states [batch, dim]; f and g follow torchsde's interface."""

    noise_type = "diagonal"
    sde_type = "ito"

    def __init__(
        self,
        dim: int,
        hidden: Sequence[int] = (32, 32),
        activation: str = "tanh",
        layer: str = "ignore",
        drift: Optional[nn.Module] = None,
        diffusion: Optional[nn.Module] = None,
        min_diffusion: float = 1e-3,
    ) -> None:
        super().__init__()
        if min_diffusion < 0:
            raise ValueError(f"min_diffusion must be >= 0; got {min_diffusion}")
        self.dim = dim
        self.drift = ODENet(dim, hidden, layer=layer, activation=activation) if drift is None else drift
        self.diffusion = ODENet(dim, hidden, layer=layer, activation=activation) if diffusion is None else diffusion
        self.min_diffusion = min_diffusion
        self.config = dict(
            dim=dim, hidden=list(hidden), activation=activation, layer=layer, min_diffusion=min_diffusion
        )

    def f(self, t: Tensor, y: Tensor) -> Tensor:
        return self.drift(t, y)

    def g(self, t: Tensor, y: Tensor) -> Tensor:
        return F.softplus(self.diffusion(t, y)) + self.min_diffusion

    def sample(
        self,
        y0: Tensor,
        ts: Tensor,
        dt: float = 0.01,
        method: str = "euler",
        adjoint: bool = False,
        generator_seed: Optional[int] = None,
    ) -> Tensor:
        """One path per row of y0 [batch, dim] at times ts [T]: returns [T, batch, dim]."""
        if y0.dim() != 2 or y0.shape[1] != self.dim:
            raise ValueError(f"y0 must be [batch, {self.dim}]; got {tuple(y0.shape)}")
        if method not in SDE_METHODS:
            raise ValueError(f"unknown SDE method {method!r}; valid: {', '.join(SDE_METHODS)}")
        if not (dt > 0 and math.isfinite(dt)):
            raise ValueError(f"dt must be a positive number; got {dt}")
        torchsde = import_torchsde()
        ts = ts.to(y0)
        bm = None
        if generator_seed is not None:
            bm = torchsde.BrownianInterval(
                t0=float(ts[0]),
                t1=float(ts[-1]),
                size=tuple(y0.shape),
                dtype=y0.dtype,
                device=y0.device,
                entropy=generator_seed,
            )
        integrate = torchsde.sdeint_adjoint if adjoint else torchsde.sdeint
        return integrate(self, y0, ts, bm=bm, method=method, dt=dt)

    @staticmethod
    def marginal_nll(paths: Tensor, observations: Tensor, min_std: float = 1e-3) -> Tensor:
        """Mean Gaussian NLL of observations [T, N, d] under per-time moments of paths [T, M, d]."""
        if (
            paths.dim() != 3
            or observations.dim() != 3
            or paths.shape[0] != observations.shape[0]
            or paths.shape[2] != observations.shape[2]
        ):
            raise ValueError(
                f"paths [T, M, d] and observations [T, N, d] must share T and d; got "
                f"{tuple(paths.shape)} and {tuple(observations.shape)}"
            )
        mean = paths.mean(dim=1, keepdim=True)
        var = paths.var(dim=1, keepdim=True) + min_std**2
        return 0.5 * (math.log(2 * math.pi) + var.log() + (observations - mean).pow(2) / var).mean()
