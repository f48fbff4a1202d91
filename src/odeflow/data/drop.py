"""Irregular sampling from regular series: drop a share of the observations at random, as in
the irregular-sampling protocols of Rubanova et al. (2019) and Kidger et al. (2020, neural CDEs).

  mode 'time':    per series, round(share * n) of its n time points lose every channel;
  mode 'channel': per series and channel, round(share * n_d) of its n_d observed values go,
                  independently across channels.

At least one observation is kept (per series; per channel in 'channel' mode). Time points left
with no observed channel are removed from the series. Seeded by the caller's generator.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import torch

from .irregular import Series

DROP_MODES = ("time", "channel")


def _kept(n: int, share: float, generator: torch.Generator) -> torch.Tensor:
    """Boolean [n]: True for the n - round(share * n) entries kept (at least 1)."""
    k = min(n - 1, int(round(share * n)))
    keep = torch.ones(n, dtype=torch.bool)
    keep[torch.randperm(n, generator=generator)[:k]] = False
    return keep


def drop_observations(
    series: Sequence[Series], share: float, mode: str = "time", generator: Optional[torch.Generator] = None
) -> List[Series]:
    """New series with `share` of each one's observations removed (see module docstring)."""
    if not 0 <= share < 1:
        raise ValueError(f"drop share must be in [0, 1) (e.g. 0.3, 0.5, 0.7); got {share}")
    if mode not in DROP_MODES:
        raise ValueError(f"unknown drop mode {mode!r}; valid: {', '.join(DROP_MODES)}")
    if share == 0:
        return list(series)
    if generator is None:
        raise ValueError("drop_observations needs a seeded torch.Generator (reproducible masks)")
    out = []
    for s in series:
        mask = s.mask.clone()
        if mode == "time":
            rows = torch.nonzero(mask.sum(-1) > 0).flatten()
            mask[rows[~_kept(len(rows), share, generator)]] = 0
        else:
            for d in range(mask.shape[1]):
                rows = torch.nonzero(mask[:, d] > 0).flatten()
                if len(rows):
                    mask[rows[~_kept(len(rows), share, generator)], d] = 0
        row = mask.sum(-1) > 0
        out.append(Series(s.times[row], s.values[row], mask[row], s.label, s.name))
    return out
