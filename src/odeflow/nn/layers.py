"""Time-conditioned linear layers (FFJORD, Grathwohl et al. 2019; seed 000 eq. 16).

    ignore:       y = W x + b
    concat:       y = W [x, t] + b
    concatsquash: y = (W x + b) * sigmoid(W_g t + b_g) + W_b t     (W_b without bias)
x: [batch, in]; t: a 0-d tensor (one time for the batch, as in a solve) or [batch] (one time per
sample, as in flow matching's regression); y: [batch, out].
"""

from __future__ import annotations

from typing import Dict, Type

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class IgnoreLinear(nn.Module):
    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim_in, dim_out)

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        return self.linear(x)


class ConcatLinear(nn.Module):
    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim_in + 1, dim_out)

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        tt = t.to(x.dtype)
        tt = tt.reshape(()).expand(*x.shape[:-1], 1) if tt.numel() == 1 else tt.reshape(-1, 1)
        return self.linear(torch.cat([x, tt], dim=-1))


class ConcatSquashLinear(nn.Module):
    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim_in, dim_out)
        self.gate = nn.Linear(1, dim_out)
        self.shift = nn.Linear(1, dim_out, bias=False)

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        tt = t.to(x.dtype).reshape(-1, 1)  # [1, 1] for one time, [batch, 1] for one per sample
        return self.linear(x) * torch.sigmoid(self.gate(tt)) + self.shift(tt)


LAYERS: Dict[str, Type[nn.Module]] = {
    "ignore": IgnoreLinear,
    "concat": ConcatLinear,
    "concatsquash": ConcatSquashLinear,
}


def make_layer(kind: str, dim_in: int, dim_out: int) -> nn.Module:
    if kind not in LAYERS:
        raise ValueError(f"unknown layer type {kind!r}; valid: {', '.join(sorted(LAYERS))}")
    return LAYERS[kind](dim_in, dim_out)


def zero_last(layer: nn.Module) -> None:
    """Zero every weight and bias of a layer, so the ODE net starts as f = 0 (RNODE)."""
    for p in layer.parameters():
        nn.init.zeros_(p)


__all__ = ["IgnoreLinear", "ConcatLinear", "ConcatSquashLinear", "LAYERS", "make_layer", "zero_last", "F"]
