"""Proportion-of-positive-values features of the observed points themselves (the PPV pooling of
ROCKET, Dempster, Petitjean & Webb 2020, here with identity and difference kernels over
observations). For each channel d, each group g (the observed values y_i = x_i for g = 0, or
their differences over l observations, y_i = x_{i+l} - x_i, for the l-th lag) and each threshold
q_{g,j,d} (the training quantiles (j - 1/2) / k, j = 1..k, of that group's terms pooled over the
training series):

    PPV_{g,j,d} = (1 / N_{g,d}) sum_i [y_{g,i,d} > q_{g,j,d}],

over the N_{g,d} terms of the series (0 when it has none). Only observed points enter (no fill),
so points dropped at random thin the terms without inventing values: the features stay near
their values on the complete series, where features of a filled path need not.
"""

from __future__ import annotations

from typing import Iterable, List, Sequence, Tuple

import torch
from torch import Tensor, nn

DEFAULT_LAGS = (1, 2, 4, 8, 16)


class PathPPV(nn.Module):
    """PPV of observed values and of their lagged differences against training quantiles."""

    thresholds: Tensor  # [G, k, D], G = 1 + len(lags): kept in checkpoints

    def __init__(self, input_dim: int, lags: Sequence[int] = DEFAULT_LAGS, levels: int = 16) -> None:
        super().__init__()
        if input_dim < 1 or levels < 1 or any(int(lag) < 1 for lag in lags):
            raise ValueError(f"need input_dim >= 1, levels >= 1 and lags >= 1; got {input_dim}, {levels}, {list(lags)}")
        self.lags, self.levels, self.input_dim = tuple(int(lag) for lag in lags), int(levels), int(input_dim)
        self.register_buffer(
            "thresholds", torch.zeros(1 + len(self.lags), self.levels, self.input_dim, dtype=torch.float64)
        )

    @property
    def num_features(self) -> int:
        return self.thresholds.numel()

    def groups(self, values: Tensor, mask: Tensor) -> List[Tuple[Tensor, Tensor]]:
        """Per group, (terms [B, T_g, D], valid [B, T_g, D]) of values and mask [B, T, D]: each
        channel's observed values moved to the front in time order, then lagged differences."""
        seen = mask > 0
        order = torch.argsort((~seen).to(torch.int8), dim=1, stable=True)
        x = values.to(torch.float64).gather(1, order)
        count = seen.sum(1, keepdim=True)  # [B, 1, D]
        idx = torch.arange(x.shape[1], device=x.device).view(1, -1, 1)
        out = [(x, idx < count)]
        for lag in self.lags:
            out.append((x[:, lag:] - x[:, :-lag], idx[:, : max(0, x.shape[1] - lag)] + lag < count))
        return out

    def fit(self, batches: Iterable[Tuple[Tensor, Tensor]]) -> None:
        """Thresholds from the training series, given as (values, mask) batches."""
        pooled: List[List[List[Tensor]]] = [[[] for _ in range(self.input_dim)] for _ in range(len(self.lags) + 1)]
        for values, mask in batches:
            for g, (y, valid) in enumerate(self.groups(values, mask)):
                for d in range(self.input_dim):
                    pooled[g][d].append(y[..., d][valid[..., d]])
        q = (torch.arange(self.levels, dtype=torch.float64) + 0.5) / self.levels
        for g in range(len(pooled)):
            for d in range(self.input_dim):
                terms = torch.cat(pooled[g][d]) if pooled[g][d] else torch.zeros(0, dtype=torch.float64)
                self.thresholds[g, :, d] = _quantiles(terms.to(torch.float64), q)

    def forward(self, values: Tensor, mask: Tensor) -> Tensor:
        """[B, G k D] float64 (group-major, then threshold, then channel)."""
        out = []
        for g, (y, valid) in enumerate(self.groups(values, mask)):
            above = (y.unsqueeze(2) > self.thresholds[g].view(1, 1, self.levels, -1)) & valid.unsqueeze(2)
            n = valid.sum(1).unsqueeze(1).clamp_min(1)  # [B, 1, D]
            out.append((above.sum(1).to(torch.float64) / n).flatten(1))  # [B, k D]
        return torch.cat(out, -1)


def _quantiles(terms: Tensor, q: Tensor) -> Tensor:
    """Linear-interpolation quantiles of a 1-D tensor (torch.quantile's rule; zeros when empty)."""
    if terms.numel() == 0:
        return torch.zeros_like(q)
    s = terms.sort().values
    pos = q * (s.numel() - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp_max(s.numel() - 1)
    return s[lo] + (pos - lo) * (s[hi] - s[lo])
