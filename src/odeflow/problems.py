"""Small built-in problems used by the demo, the CLI and the benchmarks."""
from __future__ import annotations

import torch
from torch import Tensor, nn

SPIRAL_A = ((-0.1, 2.0), (-2.0, -0.1))


def spiral_field(dtype: torch.dtype = torch.float64) -> "SpiralField":
    return SpiralField(dtype)


class SpiralField(nn.Module):
    """The seed 000 truth: du/dt = A^T u^3 with A = [[-0.1, 2], [-2, -0.1]] (DiffEqFlux spiral)."""

    def __init__(self, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.register_buffer("A", torch.tensor(SPIRAL_A, dtype=dtype))

    def forward(self, t: Tensor, u: Tensor) -> Tensor:
        return (u ** 3) @ self.A


class CubicMLP(nn.Module):
    """Seed 000 eq. (12): f(u) = W2 tanh(W1 u^3 + b1) + b2, Glorot-initialised."""

    def __init__(self, dim: int = 2, width: int = 50, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.l1 = nn.Linear(dim, width, dtype=dtype)
        self.l2 = nn.Linear(width, dim, dtype=dtype)
        for layer in (self.l1, self.l2):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, t: Tensor, u: Tensor) -> Tensor:
        return self.l2(torch.tanh(self.l1(u ** 3)))
