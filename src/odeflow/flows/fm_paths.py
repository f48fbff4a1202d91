"""Probability paths between data and noise for flow matching, in the CNF's direction.

odeflow's CNFs carry data x at s = 0 to noise z ~ N(0, I) at s = 1 (s = t / T on the block's
[0, T]); the flow-matching papers run the other way (noise at 0, data at 1), so their t is 1 - s.
Each path gives the point x_s on the conditional path and its velocity u_s = d x_s / d s.

ot (Lipman et al. 2023, eq. 20-23; rectified flow, Liu et al. 2023, is sigma_min = 0):
    x_s = (1 - s) x + (sigma_min + (1 - sigma_min) s) z,     u_s = (1 - sigma_min) z - x.
vp (the variance-preserving diffusion path, Lipman et al. 2023 eq. 19 with Song et al. 2021's
linear schedule beta(s) = beta_min + s (beta_max - beta_min)):
    alpha(s) = exp(-B(s) / 2),  B(s) = beta_min s + (beta_max - beta_min) s^2 / 2,
    x_s = alpha x + sqrt(1 - alpha^2) z,
    u_s = alpha' x - alpha alpha' / sqrt(1 - alpha^2) z,  alpha' = -beta(s) alpha / 2.
    At s = 1, alpha = exp(-5.05) = 0.0064 (nearly noise); s is drawn from [s_min, 1] since u
    is singular at s = 0.
"""

from __future__ import annotations

import math
from typing import Tuple

import torch
from torch import Tensor

PATHS = ("ot", "vp")


class OTPath:
    """The linear (conditional optimal-transport) path with minimum noise ``sigma_min``."""

    name = "ot"

    def __init__(self, sigma_min: float = 0.0) -> None:
        if not 0 <= sigma_min < 1:
            raise ValueError(f"sigma_min must be in [0, 1); got {sigma_min!r}")
        self.sigma_min = float(sigma_min)
        self.s_min = 0.0

    def point_and_velocity(self, x: Tensor, z: Tensor, s: Tensor) -> Tuple[Tensor, Tensor]:
        """(x_s, d x_s / d s) for data x, noise z [batch, ...] and s [batch]."""
        s = s.reshape(-1, *([1] * (x.dim() - 1))).to(x.dtype)
        sig = self.sigma_min
        if sig == 0.0:  # x_s = x + s u, u = z - x: two ops
            u = z - x
            return torch.addcmul(x, s, u), u
        u = (1 - sig) * z - x
        return torch.addcmul(x + sig * z, s, u), u  # = (1 - s) x + (sigma_min + (1 - sigma_min) s) z


class VPPath:
    """The variance-preserving path with the linear beta schedule (beta_min, beta_max)."""

    name = "vp"

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0, s_min: float = 1e-3) -> None:
        if not 0 < beta_min <= beta_max:
            raise ValueError(f"need 0 < beta_min <= beta_max; got {beta_min!r}, {beta_max!r}")
        if not 0 < s_min < 1:
            raise ValueError(f"s_min must be in (0, 1); got {s_min!r}")
        self.beta_min, self.beta_max, self.s_min = float(beta_min), float(beta_max), float(s_min)

    def alpha(self, s: Tensor) -> Tensor:
        B = self.beta_min * s + 0.5 * (self.beta_max - self.beta_min) * s * s
        return torch.exp(-0.5 * B)

    def point_and_velocity(self, x: Tensor, z: Tensor, s: Tensor) -> Tuple[Tensor, Tensor]:
        s = s.reshape(-1, *([1] * (x.dim() - 1))).to(x.dtype)
        a = self.alpha(s)
        da = -0.5 * (self.beta_min + s * (self.beta_max - self.beta_min)) * a
        sd = torch.sqrt((1 - a * a).clamp_min(1e-12))
        return a * x + sd * z, da * x - (a * da / sd) * z

    def end_alpha(self) -> float:
        return math.exp(-0.5 * (self.beta_min + 0.5 * (self.beta_max - self.beta_min)))


def make_path(name: str, sigma_min: float = 0.0):
    """'ot' (linear, with sigma_min) or 'vp' (variance preserving)."""
    if name == "ot":
        return OTPath(sigma_min)
    if name == "vp":
        return VPPath()
    raise ValueError(f"unknown flow-matching path {name!r}; valid: {', '.join(PATHS)}")
