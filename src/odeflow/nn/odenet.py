"""ODE nets: a stack of time-conditioned layers with a nonlinearity between them (none after
the last), widths dim -> hidden... -> dim. FFJORD's toy 2-D net is 64-64-64, tanh."""

from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .control import ControlLayer
from .layers import make_layer, zero_last

ACTIVATIONS: Dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": torch.tanh,
    "softplus": F.softplus,
    "elu": F.elu,
    "swish": F.silu,
}


class ODENet(nn.Module):
    """f(t, x) for x of shape [batch, dim]; t is one time for the batch (a solve) or one per
    sample, shape [batch] (flow matching regresses f at a random t for each sample).

    ``control_times`` (two or more) makes every layer's weights piecewise linear in t between
    those times (`ControlLayer`, seed 000 Fig. 1); ``zero_init`` starts from f = 0 (RNODE).
    """

    def __init__(
        self,
        dim: int,
        hidden: Sequence[int] = (64, 64, 64),
        layer: str = "concatsquash",
        activation: str = "tanh",
        zero_init: bool = False,
        control_times: Optional[Sequence[float]] = None,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; valid: {', '.join(sorted(ACTIVATIONS))}")
        if dim < 1 or any(h < 1 for h in hidden):
            raise ValueError(f"dimensions must be positive; got dim={dim}, hidden={list(hidden)}")
        widths = [dim, *hidden, dim]
        self.layers = nn.ModuleList(make_layer(layer, a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.act = ACTIVATIONS[activation]
        self.dim = dim
        if zero_init:
            zero_last(self.layers[-1])
        if control_times is not None and len(control_times) > 1:
            self.layers = nn.ModuleList(ControlLayer(layer_, control_times) for layer_ in self.layers)
        self.config = dict(
            dim=dim,
            hidden=list(hidden),
            layer=layer,
            activation=activation,
            zero_init=zero_init,
            control_times=None if control_times is None else list(control_times),
        )

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        """f(t, x); t is one time (0-d or one element) or one time per sample ([batch])."""
        if t.dim() > 0 and t.numel() > 1:
            if t.shape != x.shape[:1]:
                raise ValueError(
                    f"t must be one time or one per sample (shape [{x.shape[0]}]); got shape {tuple(t.shape)}"
                )
            if isinstance(self.layers[0], ControlLayer):
                raise ValueError(
                    "a net with control times (time-dependent weights) takes one time for the whole batch; "
                    "build ODENet without control_times to pass one time per sample"
                )
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(t, x)
            if i < last:
                x = self.act(x)
        return x
