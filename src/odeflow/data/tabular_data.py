"""A tabular density-estimation set: train/validation/test splits of one table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np


@dataclass(frozen=True)
class TabularData:
    """Train/validation/test splits, float64 arrays [n, d]. A user's table also keeps its column
    names and the standardization x_model = (x - mean) / std, so that samples go back to its units."""

    name: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    columns: Optional[Tuple[str, ...]] = None
    mean: Optional[np.ndarray] = None
    std: Optional[np.ndarray] = None

    @property
    def dim(self) -> int:
        return int(self.train.shape[1])

    def split(self, which: str) -> np.ndarray:
        if which not in ("train", "val", "test"):
            raise ValueError(f"unknown split {which!r}; valid: train, val, test")
        return getattr(self, which)
