"""The seed 000 spiral vector field, used by the data generator, the demo and the CLI."""

from __future__ import annotations

import torch
from torch import Tensor, nn

SPIRAL_A = ((-0.1, 2.0), (-2.0, -0.1))


class SpiralField(nn.Module):
    """The seed 000 truth: du/dt = A^T u^3 with A = [[-0.1, 2], [-2, -0.1]] (DiffEqFlux spiral)."""

    A: Tensor

    def __init__(self, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.register_buffer("A", torch.tensor(SPIRAL_A, dtype=dtype))

    def forward(self, t: Tensor, u: Tensor) -> Tensor:
        return (u**3) @ self.A
