"""The classification sets sktime bundles (UCR/UEA archive; read from the package's own files,
never downloaded), with their official train/test splits: ArrowHead, GunPoint, ItalyPowerDemand,
OSULeaf, ACSF1, PLAID (variable length), BasicMotions, JapaneseVowels (variable length) and
UnitTest (see tasks.series_sets.BUNDLED for sizes).

Each case becomes a `Series` on times i * dt (i = 0 .. n-1, dt = 1 / (longest training case - 1),
so a full-length case spans [0, 1]); missing values (NaN) are unobserved (mask 0); label = class
index, classes sorted (numerically when every class name is a number).
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np
import torch

from ..tasks.series_sets import BUNDLED, uea_short_name, valid_uea_names
from .irregular import Series


def _load_split(name: str, split: str):
    try:
        import sktime.datasets as ds
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(f"--data {name} needs sktime (it ships the UEA files): pip install 'odeflow[series]'") from e
    X, y = getattr(ds, BUNDLED[name][1])(split=split, return_X_y=True)
    return X, np.asarray(y).astype(str)


def _case_arrays(X) -> List[np.ndarray]:
    """[n_i, D] float arrays from sktime's nested DataFrame (one pandas Series per cell)."""
    out = []
    for r in range(len(X)):
        cols = [np.asarray(X.iloc[r, c], dtype=np.float64) for c in range(X.shape[1])]
        n = min(len(c) for c in cols)
        if any(len(c) != n for c in cols):
            raise ValueError(f"case {r}: channels of unequal length {[len(c) for c in cols]}")
        out.append(np.stack(cols, axis=1))
    return out


def sorted_classes(labels: List[str]) -> List[str]:
    """Class names in order: by value when all are numbers ('2' before '10'), else as text."""
    unique = set(labels)
    try:
        return sorted(unique, key=float)
    except ValueError:
        return sorted(unique)


def load_uea(name: str, dtype: torch.dtype = torch.float32) -> Tuple[List[Series], List[Series], List[str]]:
    """(train series, test series, class names) of a bundled set (short name or uea:NAME),
    official split."""
    short = uea_short_name(name)
    if short is None:
        raise ValueError(
            f"unknown UEA set {name!r}; bundled with sktime (odeflow never downloads): {valid_uea_names()}"
        )
    (x_tr, y_tr), (x_te, y_te) = _load_split(short, "train"), _load_split(short, "test")
    classes = sorted_classes(y_tr.tolist())
    unseen = sorted(set(y_te.tolist()) - set(classes))
    if unseen:
        raise ValueError(f"{name}: test classes {unseen} never occur in the training split")
    index = {c: i for i, c in enumerate(classes)}
    train_arrays, test_arrays = _case_arrays(x_tr), _case_arrays(x_te)
    dt = 1.0 / max(1, max(a.shape[0] for a in train_arrays) - 1)

    def convert(arrays: List[np.ndarray], labels: np.ndarray, split: str) -> List[Series]:
        out = []
        for i, (a, c) in enumerate(zip(arrays, labels)):
            ok = np.isfinite(a)
            values = torch.tensor(np.where(ok, a, 0.0), dtype=dtype)
            mask = torch.tensor(ok, dtype=dtype)
            times = torch.arange(a.shape[0], dtype=torch.float64).mul(dt).to(dtype)
            out.append(Series(times, values, mask, float(index[c]), f"{split}{i}"))
        return out

    return convert(train_arrays, y_tr, "train"), convert(test_arrays, y_te, "test"), classes
