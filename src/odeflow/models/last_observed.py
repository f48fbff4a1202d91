"""Where each series of a padded batch ends: the readout point of the sequence classifiers."""

from __future__ import annotations

import torch
from torch import Tensor


def last_observed(mask: Tensor) -> Tensor:
    """Index [B] of each series' last grid time with an observation (0 if none); mask [B, T, D]."""
    seen = (mask.sum(-1) > 0).to(torch.long)  # [B, T]
    idx = torch.arange(mask.shape[1], device=mask.device).expand_as(seen)
    return (idx * seen).max(-1).values
