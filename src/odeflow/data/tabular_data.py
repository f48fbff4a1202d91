"""A tabular density-estimation set: train/validation/test splits of one table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TabularData:
    """Train/validation/test splits, float64 arrays [n, d]."""

    name: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.train.shape[1])

    def split(self, which: str) -> np.ndarray:
        if which not in ("train", "val", "test"):
            raise ValueError(f"unknown split {which!r}; valid: train, val, test")
        return getattr(self, which)
