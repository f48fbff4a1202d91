"""Per-series z-normalisation (the UCR archive's convention for univariate shape series; Dau et
al. 2019, "The UCR time series archive"): each channel of each series becomes

    x'(t) = (x(t) - mean_t x) / std_t x

over that series' own observed values (std 1 where a channel is constant or seen once; a channel
never observed stays 0), so a classifier sees shapes, not levels or amplitudes.
"""

from __future__ import annotations

from typing import List, Sequence

import torch

from .irregular import Series


def standardize_each_series(series: Sequence[Series]) -> List[Series]:
    """Each series' channels z-normalised over its own observed values (mask > 0)."""
    out = []
    for s in series:
        v, m = s.values.to(torch.float64), (s.mask > 0).to(torch.float64)
        count = m.sum(0)
        mean = (v * m).sum(0) / count.clamp(min=1)
        var = (((v - mean) * m) ** 2).sum(0) / (count - 1).clamp(min=1)
        std = torch.where(var > 0, var.sqrt(), torch.ones_like(var))
        out.append(Series(s.times, (((v - mean) / std) * m).to(s.values.dtype), s.mask, s.label, s.name))
    return out
