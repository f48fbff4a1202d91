"""Vector fields of the ODE-Net classifiers (Chen et al. 2018, seed 003; seed 002 §1).

    ConvField:  f(t, h) = GN(conv_t(ReLU(GN(conv_t(ReLU(GN(h)))))))   on feature maps [B, C, H, W],
                conv_t a 3x3 convolution that sees t as one extra constant input channel
                (Chen et al.'s ODE-Net block);
    MLPField:   f(t, h) = L_t(act(... act(L_t(h)) ...))                on vectors [B, D],
                L_t a linear layer that sees t as one extra input (FFJORD's 'concat' layer).
Both map ``in_features`` to ``out_features`` (equal for a first-order field; a second-order
field reads the stacked [h, v] and returns the acceleration, half as many features).

    SecondOrder: d/dt (h, v) = (v, g(t, [h, v]))   i.e. d²h/dt² = g(h, dh/dt, t)
(Norcliffe et al. 2020, "On second order behaviour in augmented neural ODEs"; seed 002, Extensions).
"""

from __future__ import annotations

from typing import Callable, Dict, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn.layers import ConcatLinear

ACTIVATIONS: Dict[str, Callable[[Tensor], Tensor]] = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "softplus": F.softplus,
    "elu": F.elu,
    "swish": F.silu,
}


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with at least 4 channels per group and at most 32 groups (the ODE-Net paper's
    min(32, C) groups assumed C = 64). One channel per group would be instance norm, after which
    the head's global average pool of ReLU(normalised map) is nearly the same for every image."""
    groups = max(1, min(32, channels // 4))
    while channels % groups:
        groups -= 1
    return nn.GroupNorm(groups, channels)


class ConcatConv2d(nn.Module):
    """3x3 convolution (padding 1) of [h, t] with t broadcast as one constant channel."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels + 1, out_channels, kernel_size=3, padding=1)

    def forward(self, t: Tensor, h: Tensor) -> Tensor:
        tt = t.to(h.dtype).expand(h.shape[0], 1, h.shape[2], h.shape[3])
        return self.conv(torch.cat([h, tt], dim=1))


class ConvField(nn.Module):
    """Chen et al.'s ODE-Net block on feature maps, ``in_channels`` -> ``out_channels``."""

    def __init__(self, in_channels: int, out_channels: int | None = None, hidden: int | None = None) -> None:
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        hidden = out_channels if hidden is None else hidden
        if min(in_channels, out_channels, hidden) < 1:
            raise ValueError(
                f"channel counts must be positive; got in={in_channels}, out={out_channels}, hidden={hidden}"
            )
        self.norm1, self.conv1 = group_norm(in_channels), ConcatConv2d(in_channels, hidden)
        self.norm2, self.conv2 = group_norm(hidden), ConcatConv2d(hidden, out_channels)
        self.norm3 = group_norm(out_channels)
        self.in_features, self.out_features = in_channels, out_channels

    def forward(self, t: Tensor, h: Tensor) -> Tensor:
        if h.dim() != 4 or h.shape[1] != self.in_features:
            raise ValueError(f"ConvField expects feature maps [batch, {self.in_features}, H, W]; got {tuple(h.shape)}")
        out = self.conv1(t, torch.relu(self.norm1(h)))
        out = self.conv2(t, torch.relu(self.norm2(out)))
        return self.norm3(out)


class MLPField(nn.Module):
    """Time-conditioned MLP on vectors, widths in -> hidden... -> out, no activation at the end."""

    def __init__(
        self,
        in_features: int,
        out_features: int | None = None,
        hidden: Sequence[int] = (32, 32),
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; valid: {', '.join(sorted(ACTIVATIONS))}")
        out_features = in_features if out_features is None else out_features
        widths = [in_features, *hidden, out_features]
        if min(widths) < 1:
            raise ValueError(f"widths must be positive; got {widths}")
        self.layers = nn.ModuleList(ConcatLinear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.act = ACTIVATIONS[activation]
        self.in_features, self.out_features = in_features, out_features

    def forward(self, t: Tensor, h: Tensor) -> Tensor:
        if h.dim() != 2 or h.shape[1] != self.in_features:
            raise ValueError(f"MLPField expects [batch, {self.in_features}]; got {tuple(h.shape)}")
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            h = layer(t, h)
            if i < last:
                h = self.act(h)
        return h


class SecondOrder(nn.Module):
    """d/dt (h, v) = (v, g(t, [h, v])): a second-order ODE as a first-order system.

    ``accel`` is any field reading 2k features/channels (h and v stacked on dim 1) and
    returning k, the acceleration.
    """

    def __init__(self, accel: nn.Module) -> None:
        super().__init__()
        if getattr(accel, "in_features", None) != 2 * getattr(accel, "out_features", -1):
            raise ValueError(
                "the acceleration field must read twice the features it returns ([h, v] -> a); got "
                f"in={getattr(accel, 'in_features', None)}, out={getattr(accel, 'out_features', None)}"
            )
        self.accel = accel

    def forward(self, t: Tensor, state: Tuple[Tensor, Tensor]) -> Tuple[Tensor, Tensor]:
        h, v = state
        return v, self.accel(t, torch.cat([h, v], dim=1))
