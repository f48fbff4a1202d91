"""Neural controlled differential equation classifier (Kidger, Morrill, Foster & Lyons 2020).

    z(t_0) = zeta(X(t_0)),   dz/dt = f_theta(z) dX/dt,   logits = W z(t_end) + b,

with f_theta(z) an MLP reshaped to [hidden, channels] (tanh on its output) and X a cubic spline
(models.cde_splines: Hermite with backward differences, or natural) through the channels

    [time, the series' values (missing ones filled linearly), the cumulative observation count
     of every variable times `count_scale`]   (the observational intensity of the paper, §3.5).

The time channel is held constant outside the span of the series' own observations, so before
and after them the path does not move; t_end is the series' last observation. The CDE is solved
as an ODE in t by odeflow.solve (through an ODESolver: fixed steps of at most h inside every
interval between knots, backprop or the continuous adjoint), with an output at every knot.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from .cde_splines import SPLINES, CubicPath, SplineKind, fill_missing
from .last_observed import last_observed
from .ode_solver import ODESolver, disc_opt


class CDEField(nn.Module):
    """f_theta: z [B, H] -> [B, H, C] (MLP with softplus hidden layers, tanh output). Softplus, not
    the paper's ReLU: with a smooth field both gradient modes converge to the same gradient at the
    solver's order (a ReLU kink crossed between grid points costs the adjoint an order)."""

    def __init__(self, hidden: int, channels: int, width: int = 32, layers: int = 1) -> None:
        super().__init__()
        dims = [hidden] + [width] * layers
        parts: list = []
        for a, b in zip(dims[:-1], dims[1:]):
            parts += [nn.Linear(a, b), nn.Softplus()]
        parts += [nn.Linear(dims[-1], hidden * channels), nn.Tanh()]
        self.net = nn.Sequential(*parts)
        self.hidden, self.channels = hidden, channels

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(*z.shape[:-1], self.hidden, self.channels)


class CDEVectorField(nn.Module):
    """The ODE in t that the CDE becomes on a fixed path: g(t, z) = f_theta(z) dX/dt(t)."""

    def __init__(self, field: CDEField, path: CubicPath) -> None:
        super().__init__()
        self.field = field  # its parameters are this module's (the adjoint's default params)
        self.path = path

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        dx = self.path.derivative(t).to(z.dtype)  # [B, C]
        return (self.field(z) @ dx.unsqueeze(-1)).squeeze(-1)


def control_channels(times: Tensor, values: Tensor, mask: Tensor, count_scale: float = 1.0) -> Tensor:
    """The data the spline goes through, [B, T, 1 + 2D]: the time (held constant outside the series'
    observed span), the values filled linearly, and count_scale * cumulative observation counts."""
    m = (mask > 0).to(values.dtype)
    seen = m.amax(-1, keepdim=True)  # [B, T, 1]: any variable observed
    t = times.to(values.dtype).view(1, -1, 1).expand(values.shape[0], -1, 1)
    time = fill_missing(times, t, seen)
    filled = fill_missing(times, values, m)
    counts = m.cumsum(1) * count_scale
    return torch.cat([time, filled, counts], dim=-1)


class NeuralCDE(nn.Module):
    """The classifier: controls -> spline -> CDE -> linear head on z at the last observation."""

    count_scale: Tensor  # buffer: scale of the intensity channels (kept in checkpoints)

    def __init__(
        self,
        input_dim: int,
        hidden: int,
        num_classes: int,
        width: int = 32,
        spline: SplineKind = "hermite",
        count_scale: float = 1.0,
        solver: Optional[ODESolver] = None,
    ) -> None:
        super().__init__()
        if spline not in SPLINES:
            raise ValueError(f"unknown spline {spline!r}; valid: {', '.join(SPLINES)}")
        channels = 1 + 2 * input_dim
        self.initial = nn.Linear(channels, hidden)
        self.field = CDEField(hidden, channels, width)
        self.head = nn.Linear(hidden, num_classes)
        self.spline = spline
        self.solver = solver or disc_opt("rk4", 0.1)
        self.register_buffer("count_scale", torch.tensor(float(count_scale)))

    def features(self, times: Tensor, values: Tensor, mask: Tensor) -> Tensor:
        """z at each series' last observation, [B, hidden]."""
        x = control_channels(times, values, mask, float(self.count_scale))
        z0 = self.initial(x[:, 0])
        if times.shape[0] == 1:
            return z0
        # a new ODE per batch (the adjoint's backward solve still needs this path after forward)
        func = CDEVectorField(self.field, CubicPath(times, x, self.spline))
        zs = self.solver(func, z0, times)  # [T, B, H]
        assert isinstance(zs, Tensor)
        last = last_observed(mask)
        return zs[last, torch.arange(zs.shape[1], device=zs.device)]

    def forward(self, times: Tensor, values: Tensor, mask: Tensor) -> Tensor:
        return self.head(self.features(times, values, mask))
