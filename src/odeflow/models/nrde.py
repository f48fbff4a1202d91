"""Neural rough differential equation classifier (Morrill, Salvi, Kidger & Foster 2021, "Neural
Rough Differential Equations for Long Time Series"): the log-ODE method of a neural CDE.

The control path X is the piecewise-linear path through the neural CDE's channels (time held
constant outside the observed span, values filled linearly, scaled cumulative observation counts:
models.ncde.control_channels). Time is cut into windows [r_k, r_k+1] of a fixed length `window`
starting at `origin`; each window is summarised by the depth-2 log-signature L_k of X over it
(models.logsignature: increments and Lévy areas). The hidden state follows

    z(r_0) = zeta(X(t_0)),   dz/dt = f_theta(z) L_k / (r_k+1 - r_k)   on window k,
    logits = W z(r_end) + b,

solved window by window in the window's own unit time s = (t - r_k) / window (dz/ds = f(z) L_k)
by odeflow.solve through an ODESolver (default: one midpoint step per window, backprop; the
continuous adjoint with OptimizeDiscretize). A 1,460-point series with its default 153 windows is 153
solver steps instead of 1,460. After a series' last observation its path is constant, L_k = 0, and z stops.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from ..solvers.stepping import FixedStep
from .logsignature import logsignature_channels, window_logsignatures
from .ncde import CDEField, control_channels
from .ode_solver import ODESolver


class WindowField(nn.Module):
    """The autonomous ODE of one window in unit time: g(s, z) = f_theta(z) L_k."""

    def __init__(self, field: CDEField, logsig: Tensor) -> None:
        super().__init__()
        self.field = field  # its parameters are this module's (the adjoint's default params)
        self.logsig = logsig  # [B, L]

    def forward(self, s: Tensor, z: Tensor) -> Tensor:
        return (self.field(z) @ self.logsig.to(z.dtype).unsqueeze(-1)).squeeze(-1)


def default_windows(length: int) -> int:
    """The default window count for series of `length` points: about 4 sqrt(length), between 1 and
    length - 1 (a window holds ~sqrt(length) / 4 points: 150 -> 49 windows, 1,460 -> 153)."""
    return max(1, min(length - 1, round(4 * math.sqrt(length))))


class NeuralRDE(nn.Module):
    """The classifier: channels -> window log-signatures -> log-ODE steps -> linear head."""

    count_scale: Tensor  # buffers (kept in checkpoints): intensity scale, window length, first edge
    window: Tensor
    origin: Tensor

    def __init__(
        self,
        input_dim: int,
        hidden: int,
        num_classes: int,
        window: float,
        width: int = 32,
        count_scale: float = 1.0,
        origin: float = 0.0,
        solver: Optional[ODESolver] = None,
    ) -> None:
        super().__init__()
        if not window > 0:
            raise ValueError(f"window must be a positive length of time; got {window}")
        channels = 1 + 2 * input_dim
        self.initial = nn.Linear(channels, hidden)
        self.field = CDEField(hidden, channels=logsignature_channels(channels), width=width)
        self.head = nn.Linear(hidden, num_classes)
        self.solver = solver or ODESolver("midpoint", FixedStep(1.0))
        self.register_buffer("count_scale", torch.tensor(float(count_scale)))
        self.register_buffer("window", torch.tensor(float(window), dtype=torch.float64))
        self.register_buffer("origin", torch.tensor(float(origin), dtype=torch.float64))

    def edges(self, times: Tensor) -> Tensor:
        """Window edges origin + k * window covering [times[0], times[-1]] (float64)."""
        t0, t1 = float(times[0]), float(times[-1])
        w, o = float(self.window), float(self.origin)
        first = math.floor((t0 - o) / w + 1e-9)
        last = max(first + 1, math.ceil((t1 - o) / w - 1e-9))
        return o + w * torch.arange(first, last + 1, dtype=torch.float64, device=times.device)

    def features(self, times: Tensor, values: Tensor, mask: Tensor) -> Tensor:
        """z after the last window, [B, hidden] (times [T], the batch's union grid)."""
        x = control_channels(times, values, mask, float(self.count_scale))
        z = self.initial(x[:, 0])
        if times.shape[0] == 1:
            return z
        logsig = window_logsignatures(times.to(torch.float64), x.to(torch.float64), self.edges(times)).to(x.dtype)
        unit = torch.tensor([0.0, 1.0], dtype=x.dtype, device=x.device)
        for k in range(logsig.shape[1]):
            if not bool(logsig[:, k].any()):  # a constant path (after every series' end): z stays
                continue
            zs = self.solver(WindowField(self.field, logsig[:, k]), z, unit)
            assert isinstance(zs, Tensor)
            z = zs[-1]
        return z

    def forward(self, times: Tensor, values: Tensor, mask: Tensor) -> Tensor:
        return self.head(self.features(times, values, mask))
