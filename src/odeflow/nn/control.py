"""Time-dependent weights through control layers (seed 000 §3 and Fig. 1).

A control layer holds K copies of a base layer's parameters, theta_1..theta_K, attached to
control times t_1 < ... < t_K, and evaluates the base layer with

    theta(t) = sum_k w_k(t) theta_k,   w_k the piecewise-linear hat functions on the t_k,

so theta is linear between neighbouring control times and constant outside [t_1, t_K]. The
weights are a smooth function of t almost everywhere, so time gradients flow through them,
and no step needs to know which interval it is in (no host synchronisation).
"""

from __future__ import annotations

from typing import Dict, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call


def hat_weights(t: Tensor, times: Tensor) -> Tensor:
    """w_k(t) for the control times `times` [K]; sums to 1 for every t (clamped to the range)."""
    if times.numel() == 1:
        return torch.ones(1, dtype=times.dtype, device=times.device)
    tc = t.to(times.dtype).clamp(times[0], times[-1])
    left = torch.cat([times[:1], times[:-1]])
    right = torch.cat([times[1:], times[-1:]])
    k = torch.arange(times.numel(), device=times.device)
    one = torch.ones((), dtype=times.dtype, device=times.device)
    rising = torch.where(k == 0, one, ((tc - left) / (times - left).clamp_min(1e-300)).clamp(0, 1))
    falling = torch.where(k == k[-1], one, ((right - tc) / (right - times).clamp_min(1e-300)).clamp(0, 1))
    return torch.minimum(rising, falling)


class ControlLayer(nn.Module):
    """Wrap a time-conditioned layer layer(t, x) so that its parameters vary in time.

    Args:
        base: the layer (its current parameters initialise every control copy).
        times: the control times t_1 < ... < t_K (K >= 1; K = 1 is the plain layer).
    """

    times: Tensor  # buffer [K]

    def __init__(self, base: nn.Module, times: Sequence[float]) -> None:
        super().__init__()
        times_t = torch.as_tensor(list(times), dtype=torch.float64)
        if times_t.dim() != 1 or times_t.numel() < 1 or not bool((times_t[1:] > times_t[:-1]).all()):
            raise ValueError(f"control times must be a non-empty increasing sequence; got {list(times)}")
        self._template = (base,)  # not a submodule: its own parameters are never used
        self.register_buffer("times", times_t)
        self.names = [name for name, _ in base.named_parameters()]
        self.controls = nn.ParameterList(
            nn.Parameter(torch.stack([p.detach().clone() for _ in range(len(times_t))]))
            for _, p in base.named_parameters()
        )

    def parameters_at(self, t: Tensor) -> Dict[str, Tensor]:
        w = hat_weights(t, self.times)
        return {
            name: torch.tensordot(w.to(stack.dtype), stack, dims=1) for name, stack in zip(self.names, self.controls)
        }

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        return functional_call(self._template[0], self.parameters_at(t), (t, x))
