"""Image preprocessing with log-determinants (Dinh et al. 2017, Real NVP; FFJORD; seed 001 §6).

dequantize:  x <- (x_int + u) / 256,  u ~ U[0, 1)^D, so a density on [0, 1]^D is fitted
             to 8-bit data (its likelihood bounds the discrete one from below).
logit:       s = alpha + (1 - 2 alpha) x,  y = log s - log(1 - s),
             log|det dy/dx| = sum_i [log(1 - 2 alpha) - log s_i - log(1 - s_i)].
squeeze:     [B, C, H, W] -> [B, 4C, H/2, W/2] (each 2x2 patch becomes 4 channels; a permutation,
             log-det 0); unsqueeze is its inverse.
bits/dim:    for log p(x) of the dequantized x in [0, 1]^D (nats),
             bits/dim = -(log p(x) / D - log 256) / log 2
             (the density of x * 256 is p / 256^D).
"""

from __future__ import annotations

import math
from typing import Optional, Tuple, Union, overload

import torch
from torch import Tensor


def dequantize(
    x: Tensor, generator: Optional[torch.Generator] = None, dtype: torch.dtype = torch.float32, levels: int = 256
) -> Tensor:
    """Integer pixels 0..levels-1 (any integer dtype) -> (x + U[0, 1)) / levels in [0, 1)."""
    if x.dtype.is_floating_point or x.dtype == torch.bool:
        raise TypeError(f"dequantize expects integer pixels (e.g. uint8 0..255); got dtype {x.dtype}")
    if x.numel() and (int(x.min()) < 0 or int(x.max()) >= levels):
        raise ValueError(f"pixel values must lie in 0..{levels - 1}; got {int(x.min())}..{int(x.max())}")
    u = torch.rand(x.shape, generator=generator, dtype=dtype, device=x.device)
    return (x.to(dtype) + u) / levels


def _check_alpha(alpha: float) -> None:
    if not 0 <= alpha < 0.5:
        raise ValueError(f"logit alpha must lie in [0, 0.5); got {alpha}")


def logit_transform(x: Tensor, alpha: float = 1e-6) -> Tuple[Tensor, Tensor]:
    """x in [0, 1] -> (y = logit(alpha + (1 - 2 alpha) x), log|det dy/dx| per sample [B])."""
    _check_alpha(alpha)
    s = alpha + (1 - 2 * alpha) * x
    y = torch.log(s) - torch.log1p(-s)
    logdet = (math.log1p(-2 * alpha) - torch.log(s) - torch.log1p(-s)).flatten(1).sum(dim=1)
    return y, logdet


def logit_inverse(y: Tensor, alpha: float = 1e-6) -> Tensor:
    """The inverse of `logit_transform`: x = (sigmoid(y) - alpha) / (1 - 2 alpha)."""
    _check_alpha(alpha)
    return (torch.sigmoid(y) - alpha) / (1 - 2 * alpha)


def squeeze(x: Tensor, factor: int = 2) -> Tensor:
    """[B, C, H, W] -> [B, C f^2, H/f, W/f]: channel c * f^2 + i * f + j holds pixel (f h' + i, f w' + j)."""
    if x.dim() != 4 or x.shape[2] % factor or x.shape[3] % factor:
        raise ValueError(f"squeeze needs [B, C, H, W] with H and W divisible by {factor}; got {tuple(x.shape)}")
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // factor, factor, w // factor, factor)
    return x.permute(0, 1, 3, 5, 2, 4).reshape(b, c * factor * factor, h // factor, w // factor)


def unsqueeze(x: Tensor, factor: int = 2) -> Tensor:
    """The inverse of `squeeze`: [B, C f^2, H, W] -> [B, C, H f, W f]."""
    if x.dim() != 4 or x.shape[1] % (factor * factor):
        raise ValueError(f"unsqueeze needs [B, C, H, W] with C divisible by {factor * factor}; got {tuple(x.shape)}")
    b, c, h, w = x.shape
    x = x.reshape(b, c // (factor * factor), factor, factor, h, w)
    return x.permute(0, 1, 4, 2, 5, 3).reshape(b, c // (factor * factor), h * factor, w * factor)


@overload
def bits_per_dim(log_prob: Tensor, dims: int, levels: int = 256) -> Tensor: ...


@overload
def bits_per_dim(log_prob: float, dims: int, levels: int = 256) -> float: ...


def bits_per_dim(log_prob: Union[Tensor, float], dims: int, levels: int = 256) -> Union[Tensor, float]:
    """Bits per dimension of 8-bit (``levels``) data from log p(x) in nats of the data scaled to [0, 1]^D."""
    if dims < 1:
        raise ValueError(f"dims must be >= 1; got {dims}")
    return -(log_prob / dims - math.log(levels)) / math.log(2)
