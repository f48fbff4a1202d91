"""Tabular density-estimation data (seed 000 §4.2.3, Table 2): the five MAF sets and two
built-in real sets that work offline.

Standard files (Papamakarios et al. 2017, "Masked Autoregressive Flow", data archive on
zenodo record 1161203, `data.tar.gz`), read from a data directory (argument, else the
environment variable ODEFLOW_DATA, else ./data) with the MAF preprocessing:

    power     power/data.npy              2,049,280 x 8 -> d = 6
    gas       gas/ethylene_CO.pickle      pandas DataFrame -> d = 8
    hepmass   hepmass/1000_train.csv, hepmass/1000_test.csv -> d = 21
    miniboone miniboone/data.npy          36,488 x 43 -> d = 43
    bsds300   BSDS300/BSDS300.hdf5        train/validation/test, d = 63

Built in (scikit-learn, no download): `digits` (1,797 8x8 images, 17 grey levels, 64-D,
dequantized like BSDS300 patches) and `breast_cancer` (569 x 30, standardized).

Every loader returns a `TabularData` with float64 arrays train/val/test of shape [n, d].
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from .file_checks import load_npy, refuse_folder
from .safe_pickle import load_dataframe_pickle
from .tabular_data import TabularData

PathLike = Union[str, Path]
ARCHIVE = (
    "the MAF data archive (Papamakarios et al. 2017; zenodo.org record 1161203, data.tar.gz): "
    "unpack it so that its folders power/, gas/, hepmass/, miniboone/, BSDS300/ lie in the data directory"
)


def data_dir(path: Optional[PathLike] = None) -> Path:
    """The data directory: `path`, else $ODEFLOW_DATA, else ./data."""
    if path is not None:
        return Path(path)
    env = os.environ.get("ODEFLOW_DATA")
    return Path(env) if env else Path("data")


def _require(root: Path, rel: str, name: str) -> Path:
    path = root / rel
    refuse_folder(path, f"{name}: data file", f"{rel} must be the file from {ARCHIVE}")
    if not path.is_file():
        raise FileNotFoundError(
            f"{name}: missing file {rel} in the data directory {root} (looked for {path}). It comes from {ARCHIVE}; "
            f"or point --data-dir / ODEFLOW_DATA at the folder that holds {rel}. Built-in sets that need no "
            f"files: {', '.join(BUILTIN)}"
        )
    return path


def _check_finite(x: np.ndarray, what: str) -> None:
    bad = ~np.isfinite(x)
    if bad.any():
        rows = np.nonzero(bad.any(axis=1))[0]
        raise ValueError(
            f"{what} contains NaN or inf in {len(rows)} rows (first {rows[:5].tolist()}); "
            "the file is damaged or not the standard one: replace it"
        )


def _check_columns(x: np.ndarray, cols: int, what: str) -> None:
    if x.ndim != 2 or x.shape[1] != cols:
        raise ValueError(
            f"{what} must be a 2-D table with {cols} columns; got shape {x.shape}. Is it the standard file?"
        )


def split_tail(data: np.ndarray, fraction: float = 0.1) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MAF split: test = last 10 %, validation = last 10 % of the rest, train = the remainder."""
    n_test = int(fraction * data.shape[0])
    test, rest = data[data.shape[0] - n_test :], data[: data.shape[0] - n_test]
    n_val = int(fraction * rest.shape[0])
    return rest[: rest.shape[0] - n_val], rest[rest.shape[0] - n_val :], test


def normalise(
    train: np.ndarray, val: np.ndarray, test: np.ndarray, mu: Union[np.ndarray, float], s: Union[np.ndarray, float]
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (train - mu) / s, (val - mu) / s, (test - mu) / s


def preprocess_power(raw: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MAF POWER: shuffle (RandomState(42)), drop columns 3 then 1, add uniform noise from the
    same generator, split, normalise by the train+validation mean/std (ddof 0). d = 6."""
    _check_columns(raw, 8, "power/data.npy")
    _check_finite(raw, "power/data.npy")
    rng = np.random.RandomState(42)
    data = np.array(raw, dtype=np.float64)
    rng.shuffle(data)
    n = data.shape[0]
    data = np.delete(data, 3, axis=1)
    data = np.delete(data, 1, axis=1)
    voltage = 0.01 * rng.rand(n, 1)  # drawn in this order (MAF), stacked in column order
    gap = 0.001 * rng.rand(n, 1)
    sub_metering = rng.rand(n, 3)
    data = data + np.hstack((gap, voltage, sub_metering, np.zeros((n, 1))))
    train, val, test = split_tail(data)
    both = np.vstack((train, val))
    return normalise(train, val, test, both.mean(axis=0), both.std(axis=0))


def preprocess_gas(frame) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MAF GAS: drop Meth, Eth, Time; repeatedly drop the first column that correlates > 0.98
    with another one; normalise the whole set (ddof 1); split without shuffling. d = 8."""
    missing = [c for c in ("Meth", "Eth", "Time") if c not in frame.columns]
    if missing:
        raise ValueError(
            f"gas/ethylene_CO.pickle: columns {missing} not found (columns: {list(frame.columns)[:20]}); "
            "is it the standard file?"
        )
    frame = frame.drop(columns=["Meth", "Eth", "Time"])
    _check_finite(frame.to_numpy(dtype=np.float64), "gas/ethylene_CO.pickle")
    while True:
        counts = (frame.corr() > 0.98).to_numpy().sum(axis=1)
        over = np.nonzero(counts > 1)[0]
        if len(over) == 0:
            break
        frame = frame.drop(columns=frame.columns[over[0]])
    frame = (frame - frame.mean()) / frame.std()
    return split_tail(frame.to_numpy(dtype=np.float64))


def preprocess_hepmass(train_frame, test_frame) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MAF HEPMASS: keep signal rows (label == 1, first column), drop the label, drop the test
    file's last column, normalise by the train mean/std (ddof 1), drop every feature whose
    smallest value occurs more than 5 times in train, validation = last 10 % of train. d = 21.
    Columns are matched by position."""
    train = train_frame.to_numpy(dtype=np.float64)
    test = test_frame.to_numpy(dtype=np.float64)
    train = train[train[:, 0] == 1][:, 1:]
    test = test[test[:, 0] == 1][:, 1:-1]
    if train.shape[1] != test.shape[1]:
        raise ValueError(
            f"hepmass: after dropping the label (and the test file's last column) train has "
            f"{train.shape[1]} columns but test has {test.shape[1]}; are these the standard "
            "1000_train.csv / 1000_test.csv?"
        )
    if train.shape[0] < 2:
        raise ValueError(f"hepmass/1000_train.csv has {train.shape[0]} rows with label 1; need at least 2")
    _check_finite(train, "hepmass/1000_train.csv")
    _check_finite(test, "hepmass/1000_test.csv")
    mu, s = train.mean(axis=0), train.std(axis=0, ddof=1)
    constant = s == 0  # its smallest value repeats: dropped below anyway
    s = np.where(constant, 1.0, s)
    train, test = (train - mu) / s, (test - mu) / s
    keep = [j for j in range(train.shape[1]) if not constant[j] and Counter(train[:, j])[train[:, j].min()] <= 5]
    train, test = train[:, keep], test[:, keep]
    n_val = int(0.1 * train.shape[0])
    return train[: train.shape[0] - n_val], train[train.shape[0] - n_val :], test


def preprocess_miniboone(raw: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MAF MINIBOONE: split without shuffling, normalise by train+validation (ddof 0). d = 43."""
    _check_columns(raw, 43, "miniboone/data.npy")
    _check_finite(raw, "miniboone/data.npy")
    train, val, test = split_tail(np.asarray(raw, dtype=np.float64))
    both = np.vstack((train, val))
    return normalise(train, val, test, both.mean(axis=0), both.std(axis=0))


def load_power(root: Path) -> TabularData:
    raw = load_npy(_require(root, "power/data.npy", "power"))
    return TabularData("power", *preprocess_power(raw))


def load_gas(root: Path) -> TabularData:
    csv = root / "gas/ethylene_CO.csv"
    if csv.is_file() and not (root / "gas/ethylene_CO.pickle").is_file():
        import pandas as pd

        frame = pd.read_csv(csv)
    else:
        frame = load_dataframe_pickle(_require(root, "gas/ethylene_CO.pickle", "gas"))
    return TabularData("gas", *preprocess_gas(frame))


def load_hepmass(root: Path) -> TabularData:
    pd = _pandas()
    frames = [
        pd.read_csv(_require(root, f"hepmass/1000_{s}.csv", "hepmass"), index_col=False) for s in ("train", "test")
    ]
    return TabularData("hepmass", *preprocess_hepmass(*frames))


def load_miniboone(root: Path) -> TabularData:
    raw = load_npy(_require(root, "miniboone/data.npy", "miniboone"))
    return TabularData("miniboone", *preprocess_miniboone(raw))


def load_bsds300(root: Path) -> TabularData:
    """BSDS300 patches as stored (already dequantized, 8x8 minus one pixel): d = 63."""
    path = _require(root, "BSDS300/BSDS300.hdf5", "bsds300")
    try:
        import h5py
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("reading BSDS300 needs h5py: pip install 'odeflow[tabular]'") from err
    keys = ("train", "validation", "test")
    try:
        with h5py.File(path, "r") as f:
            found = {k: f.get(k) for k in keys}
            missing = [k for k in keys if not isinstance(found[k], h5py.Dataset)]
            present = list(f.keys())
            parts = [] if missing else [np.asarray(found[k], dtype=np.float64) for k in keys]
    except (OSError, RuntimeError, KeyError, TypeError, ValueError) as err:  # h5py's errors for damaged files
        raise ValueError(
            f"{path}: not a readable HDF5 file of numbers ({type(err).__name__}: {err}); "
            "replace it with the standard BSDS300.hdf5"
        ) from None
    if missing:
        raise ValueError(f"{path} lacks datasets {missing} (has {present}); is it the standard file?")
    for part, k in zip(parts, ("train", "validation", "test")):
        _check_columns(part, 63, f"{path}[{k}]")
        _check_finite(part, f"{path}[{k}]")
    return TabularData("bsds300", parts[0], parts[1], parts[2])


def _pandas():
    try:
        import pandas as pd
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("reading GAS/HEPMASS needs pandas: pip install 'odeflow[tabular]'") from err
    return pd


def _sklearn_datasets():
    try:
        from sklearn import datasets
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("the built-in sets come from scikit-learn: pip install 'odeflow[tabular]'") from err
    return datasets


def shuffled_split(data: np.ndarray, seed: int = 42) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fixed permutation (RandomState(seed)), then the MAF tail split."""
    order = np.random.RandomState(seed).permutation(data.shape[0])
    return split_tail(data[order])


def preprocess_digits(images: np.ndarray, levels: int = 17) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Digits like BSDS300 patches: dequantize x = (v + u) / levels with u ~ U[0, 1) drawn from
    RandomState(0) (so x in [0, 1)), fixed shuffled split, centre by the train pixel mean.
    All 64 pixels are kept (no per-image mean removal, which would make the density singular)."""
    data = (np.asarray(images, dtype=np.float64) + np.random.RandomState(0).rand(*images.shape)) / levels
    train, val, test = shuffled_split(data)
    return normalise(train, val, test, train.mean(axis=0), 1.0)


def load_digits(root: Optional[Path] = None) -> TabularData:
    return TabularData("digits", *preprocess_digits(_sklearn_datasets().load_digits().data))


def load_breast_cancer(root: Optional[Path] = None) -> TabularData:
    """569 x 30, fixed shuffled split, standardized by the train+validation mean/std (as MINIBOONE)."""
    train, val, test = shuffled_split(np.asarray(_sklearn_datasets().load_breast_cancer().data, dtype=np.float64))
    both = np.vstack((train, val))
    return TabularData("breast_cancer", *normalise(train, val, test, both.mean(axis=0), both.std(axis=0)))


LOADERS: Dict[str, Callable[[Path], TabularData]] = {
    "power": load_power,
    "gas": load_gas,
    "hepmass": load_hepmass,
    "miniboone": load_miniboone,
    "bsds300": load_bsds300,
    "digits": load_digits,
    "breast_cancer": load_breast_cancer,
}
BUILTIN: Sequence[str] = ("digits", "breast_cancer")
DIMS: Dict[str, int] = {
    "power": 6,
    "gas": 8,
    "hepmass": 21,
    "miniboone": 43,
    "bsds300": 63,
    "digits": 64,
    "breast_cancer": 30,
}


def load_tabular(name: str, root: Optional[PathLike] = None, seed: int = 0) -> TabularData:
    """One of `LOADERS` by name, files read from `data_dir(root)`; or a table of the user's own
    (a path ending in .csv, .npy or .parquet: `data.user_table`, split with `seed`)."""
    from .user_table import TABLE_SUFFIXES, is_table_path, load_user_table

    if name not in LOADERS and is_table_path(name):
        return load_user_table(name, seed)
    if name not in LOADERS:
        raise ValueError(
            f"unknown tabular data set {name!r}; valid: {', '.join(LOADERS)}, or a path to a table "
            f"of your own ending in {', '.join(TABLE_SUFFIXES)}"
        )
    return LOADERS[name](data_dir(root))
