"""Convolutional ODE nets for image CNFs (FFJORD's image net as used by RNODE, seed 001 §6).

    f(t, z) = L_4(t, a(L_3(t, a(L_2(t, a(L_1(t, z)))))),  L_l(t, h) = conv3x3([h, t 1]; theta_l(t))

a = softplus, 64 hidden channels, time concatenated to the input of every layer as a constant
channel, "same" padding. theta(t) is piecewise constant in time (seed 001: 10 pieces on
MNIST, 14 on CIFAR-10): piece k of K holds on [k T0 / K, (k + 1) T0 / K) and the first/last
piece continues below 0 / beyond T0 (so a learnable end time keeps the pieces where they are;
the end-time gradient then stays the integrand at T). Choosing the piece is a tensor index:
no host synchronisation. The net works on flattened states z [B, C*H*W] so that it plugs into
`odeflow.flows.CNF` unchanged. t is one time for the batch (a solver's call) or one time per
sample, shape [B] or [B, 1, 1, 1] (flow matching): each sample then sees its own time channel and
the weights of its own piece (samples grouped by piece, one convolution per piece present).
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CONV_ACTIVATIONS: Dict[str, Callable[[Tensor], Tensor]] = {
    "softplus": F.softplus,
    "tanh": torch.tanh,
    "elu": F.elu,
    "swish": F.silu,
}


def piece_index(t: Tensor, T0: float, pieces: int) -> Tensor:
    """Index k of the piece holding each time in t: floor(t K / T0) clamped to 0..K-1 (a long
    tensor of t's number of elements, flattened)."""
    k = torch.floor(t.detach().to(torch.float64).reshape(-1) * (pieces / T0)).long()
    return k.clamp(0, pieces - 1)


class PiecewiseConcatConv2d(nn.Module):
    """conv3x3 of [h, t] with weights W_k, b_k for the piece k that holds t.

    Every piece starts from the same (PyTorch-default) initialisation, so f starts continuous in t."""

    def __init__(self, c_in: int, c_out: int, pieces: int = 1, kernel: int = 3) -> None:
        super().__init__()
        base = nn.Conv2d(c_in + 1, c_out, kernel, padding=kernel // 2)
        self.weight = nn.Parameter(base.weight.detach().unsqueeze(0).repeat(pieces, 1, 1, 1, 1))
        assert base.bias is not None  # nn.Conv2d has a bias by default
        self.bias = nn.Parameter(base.bias.detach().unsqueeze(0).repeat(pieces, 1))
        self.padding = kernel // 2

    def forward(self, t: Tensor, h: Tensor, k: Tensor) -> Tensor:
        tt = t.to(h.dtype).expand(h.shape[0], 1, h.shape[2], h.shape[3])
        w = self.weight.index_select(0, k).squeeze(0)
        b = self.bias.index_select(0, k).squeeze(0)
        return F.conv2d(torch.cat([h, tt], dim=1), w, b, padding=self.padding)


class ConvODENet(nn.Module):
    """f(t, z) for flattened images z [B, C*H*W] of shape ``shape`` = (C, H, W).

    Args:
        hidden: channels of the intermediate layers (64, 64, 64: a 4-layer net).
        pieces, T0: theta(t) piecewise constant on K = ``pieces`` equal pieces of [0, T0].
        zero_init: last layer zero, so f = 0 at the start (RNODE).
    """

    def __init__(
        self,
        shape: Sequence[int],
        hidden: Sequence[int] = (64, 64, 64),
        activation: str = "softplus",
        pieces: int = 1,
        T0: float = 1.0,
        zero_init: bool = True,
    ) -> None:
        super().__init__()
        if len(shape) != 3 or any(int(s) < 1 for s in shape):
            raise ValueError(f"shape must be (C, H, W) with positive sizes; got {tuple(shape)}")
        if activation not in CONV_ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; valid: {', '.join(sorted(CONV_ACTIVATIONS))}")
        if pieces < 1 or not T0 > 0 or any(h < 1 for h in hidden):
            raise ValueError(
                f"need pieces >= 1, T0 > 0 and positive hidden widths; got pieces={pieces}, T0={T0}, "
                f"hidden={list(hidden)}"
            )
        self.shape: Tuple[int, int, int] = (int(shape[0]), int(shape[1]), int(shape[2]))
        widths = [self.shape[0], *hidden, self.shape[0]]
        layers = [PiecewiseConcatConv2d(a, b, pieces) for a, b in zip(widths[:-1], widths[1:])]
        if zero_init:
            nn.init.zeros_(layers[-1].weight)
            nn.init.zeros_(layers[-1].bias)
        self.layers = nn.ModuleList(layers)
        self.act = CONV_ACTIVATIONS[activation]
        self.pieces, self.T0 = int(pieces), float(T0)
        self.dim = math.prod(self.shape)
        self.config: Dict[str, object] = dict(
            shape=list(self.shape),
            hidden=list(hidden),
            activation=activation,
            pieces=pieces,
            T0=T0,
            zero_init=zero_init,
        )

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        """f(t, z); t is one time (0-d or one element) or one per sample ([B] or [B, 1, 1, 1])."""
        if t.dim() > 0 and t.numel() > 1:
            return self._per_sample(t, z)
        return self._run(t, z, piece_index(t, self.T0, self.pieces).to(z.device))

    def _run(self, t: Tensor, z: Tensor, k: Tensor) -> Tensor:
        h = z.reshape(z.shape[0], *self.shape)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            h = layer(t, h, k)
            if i < last:
                h = self.act(h)
        return h.reshape(z.shape[0], self.dim)

    def _per_sample(self, t: Tensor, z: Tensor) -> Tensor:
        b = z.shape[0]
        if t.numel() != b or t.dim() not in (1, 4) or (t.dim() == 4 and tuple(t.shape[1:]) != (1, 1, 1)):
            raise ValueError(
                f"t must be one time or one per sample (shape [{b}] or [{b}, 1, 1, 1]); got {tuple(t.shape)}"
            )
        t4 = t.reshape(b, 1, 1, 1)
        if self.pieces == 1:
            return self._run(t4, z, torch.zeros(1, dtype=torch.long, device=z.device))
        k = piece_index(t, self.T0, self.pieces).to(z.device)
        out = torch.empty(b, self.dim, dtype=z.dtype, device=z.device)
        for piece in torch.unique(k).tolist():  # one host sync: the pieces present in the batch
            rows = (k == piece).nonzero().reshape(-1)
            out = out.index_put((rows,), self._run(t4[rows], z[rows], k.new_full((1,), piece)))
        return out
