"""Time-series regression with a neural ODE (seed 000 §4.1; Chen et al. 2018).

y' = f_theta(y), y(t_0) = u_0, with f_theta(y) = W_L s(... s(W_1 g(y) + b_1) ...) + b_L, an MLP
applied to an input transform g (the seed uses g(y) = y^3, widths 2 -> 50 -> 2, tanh).
The loss is the sum of squared errors at the observation times.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence, Union, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..gradients import DiscretizeOptimize, OptimizeDiscretize
from ..solve import solve
from ..solvers.solution import Solution
from ..solvers.stepping import Adaptive, FixedStep

ACTIVATIONS: Dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": torch.tanh,
    "softplus": F.softplus,
    "elu": F.elu,
    "swish": F.silu,
    "relu": torch.relu,
}
TRANSFORMS: Dict[str, Callable[[Tensor], Tensor]] = {
    "identity": lambda u: u,
    "cube": lambda u: u * u * u,
}


def _lookup(table: Dict[str, Callable], name: str, what: str) -> Callable:
    if name not in table:
        raise ValueError(f"unknown {what} {name!r}; valid: {', '.join(sorted(table))}")
    return table[name]


class VectorFieldMLP(nn.Module):
    """Autonomous MLP vector field f(t, y) = MLP(g(y)), Glorot-initialised.

    Calls F.linear on the parameters directly: at batch 1 the per-call overhead of the module
    machinery is a large part of a step, and a solve makes hundreds of calls.
    """

    def __init__(
        self,
        dim: int,
        hidden: Sequence[int] = (50,),
        activation: str = "tanh",
        transform: str = "cube",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.act = _lookup(ACTIVATIONS, activation, "activation")
        self.transform = _lookup(TRANSFORMS, transform, "input transform")
        widths = [dim, *hidden, dim]
        linears = [nn.Linear(a, b, dtype=dtype) for a, b in zip(widths[:-1], widths[1:])]
        for layer in linears:
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.layers = nn.ModuleList(linears)
        self.config = dict(dim=dim, hidden=list(hidden), activation=activation, transform=transform)

    def forward(self, t: Tensor, y: Tensor) -> Tensor:
        h = self.transform(y)
        last = len(self.layers) - 1
        for i, layer in enumerate(cast(Sequence[nn.Linear], self.layers)):  # ModuleList's stub is untyped
            h = F.linear(h, layer.weight, layer.bias)
            if i < last:
                h = self.act(h)
        return h


class TimeSeriesODE(nn.Module):
    """A neural ODE fitted to one trajectory: predict(t) = y(t) from y(t_0) = u0."""

    def __init__(self, field: VectorFieldMLP) -> None:
        super().__init__()
        self.field = field

    def solve(
        self,
        u0: Tensor,
        t: Tensor,
        method: str = "rk4",
        step: Optional[Union[FixedStep, Adaptive]] = None,
        gradient: Optional[Union[DiscretizeOptimize, OptimizeDiscretize]] = None,
        compile: bool = False,
    ) -> Solution:
        return solve(self.field, u0, t, method=method, step=step, gradient=gradient, compile=compile)

    @staticmethod
    def loss(pred: Tensor, target: Tensor) -> Tensor:
        """Sum of squared errors over all observations (seed 000 eq. 5)."""
        if pred.shape != target.shape:
            raise ValueError(f"prediction shape {tuple(pred.shape)} does not match data shape {tuple(target.shape)}")
        return (pred - target).pow(2).sum()
