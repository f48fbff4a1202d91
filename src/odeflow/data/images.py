"""Image data sets from their standard files (nothing is downloaded).

    load_images(name, data_dir, split) -> (x uint8 [N, C, H, W], y int64 [N])

digits         scikit-learn's 8x8 digits (1,797 images, 17 grey levels 0..16 rescaled to
               round(v * 255 / 16)), ships with scikit-learn; fixed split: a RandomState(0)
               permutation, test = last 20 %, val = last 10 % of the rest.
mnist,         IDX files (big-endian header: magic 2051, n, rows, cols for images; 2049, n for
fashion-mnist  labels; raw uint8 after), gzipped or not, standard names
               (train-images-idx3-ubyte[.gz], ...) under DATA_DIR/mnist/ or
               DATA_DIR/fashion-mnist/, torchvision's DATA_DIR/MNIST/raw/ or
               DATA_DIR/FashionMNIST/raw/, or DATA_DIR itself.
cifar10        the python batches data_batch_1..5 and test_batch under
               DATA_DIR/cifar-10-batches-py/ (or DATA_DIR itself): pickled dicts with b'data'
               (N x 3072 uint8, channel-major) and b'labels'; read with a restricted unpickler
               that builds only dicts, lists, bytes, str, ints and numpy arrays.
For the file-based sets, val = the last 10 % of the training files, train = the rest.
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import zlib
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

IMAGE_DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10")
SPLITS = ("train", "val", "test")
VAL_FRACTION = 0.1

_IDX_LAYOUTS = {"mnist": ("mnist", "MNIST/raw"), "fashion-mnist": ("fashion-mnist", "FashionMNIST/raw")}
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_WHERE = {
    "mnist": "http://yann.lecun.com/exdb/mnist/ (or torchvision.datasets.MNIST(root, download=True))",
    "fashion-mnist": "https://github.com/zalandoresearch/fashion-mnist (or torchvision.datasets.FashionMNIST)",
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar.html ('CIFAR-10 python version', unpack the tar.gz)",
}
_CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))


def load_images(name: str, data_dir: Union[str, Path, None], split: str) -> Tuple[Tensor, Tensor]:
    """(x, y) of one split: x uint8 [N, C, H, W] (values 0..255), y int64 [N] class labels.

    Raises ValueError for an unknown name or split (listing the valid ones), FileNotFoundError
    naming the searched paths and expected files, ValueError for malformed files."""
    if name not in IMAGE_DATASETS:
        raise ValueError(f"unknown image data set {name!r}; valid: {', '.join(IMAGE_DATASETS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    if name == "digits":
        x, y = _digits(split)
    else:
        if data_dir is None:
            raise ValueError(
                f"data set {name!r} is read from files: give data_dir (--data-dir DIR); "
                f"get the files from {_WHERE[name]}"
            )
        source = "test" if split == "test" else "train"
        x, y = _idx(name, Path(data_dir), source) if name in _IDX_LAYOUTS else _cifar(Path(data_dir), source)
        if split != "test":
            x, y = _take_val(x, y, split)
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.asarray(y, dtype=np.int64))


def _take_val(x: np.ndarray, y: np.ndarray, split: str) -> Tuple[np.ndarray, np.ndarray]:
    n_val = int(round(VAL_FRACTION * len(x)))
    cut = len(x) - n_val
    return (x[:cut], y[:cut]) if split == "train" else (x[cut:], y[cut:])


# --- digits (scikit-learn) -------------------------------------------------------------------


def _digits(split: str) -> Tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the 'digits' data set needs scikit-learn: pip install 'odeflow[images]'") from exc
    bunch = load_digits()
    levels = np.asarray(bunch.images)  # [1797, 8, 8], values 0..16
    x = np.rint(levels * (255.0 / 16.0)).astype(np.uint8)[:, None]
    y = np.asarray(bunch.target, dtype=np.int64)
    order = np.random.RandomState(0).permutation(len(x))
    x, y = x[order], y[order]
    n_test = int(round(0.2 * len(x)))
    if split == "test":
        return x[-n_test:], y[-n_test:]
    return _take_val(x[:-n_test], y[:-n_test], split)


# --- MNIST / Fashion-MNIST (IDX) ----------------------------------------------------------


def _find(folders: Sequence[Path], stem: str) -> Optional[Path]:
    for folder in folders:
        for candidate in (folder / stem, folder / (stem + ".gz")):
            if candidate.is_file():
                return candidate
            if candidate.is_dir():
                raise ValueError(f"{candidate} is a folder, not a file; it must be the IDX file of that name")
    return None


def _idx(name: str, data_dir: Path, source: str) -> Tuple[np.ndarray, np.ndarray]:
    folders = [data_dir / sub for sub in _IDX_LAYOUTS[name]] + [data_dir]
    stems = _IDX_FILES[source]
    found = [_find(folders, stem) for stem in stems]
    paths = [p for p in found if p is not None]
    if len(paths) != len(found):
        raise FileNotFoundError(
            f"{name} {source} files not found; searched {', '.join(str(f) for f in folders)} for "
            f"{' and '.join(s + '[.gz]' for s in stems)}. Put the IDX files in {folders[0]}/ "
            f"(from {_WHERE[name]}); nothing is downloaded"
        )
    images = read_idx(paths[0], expect_magic=2051)
    labels = read_idx(paths[1], expect_magic=2049)
    if len(images) != len(labels):
        raise ValueError(f"{paths[0]} holds {len(images)} images but {paths[1]} holds {len(labels)} labels")
    return images[:, None], labels.astype(np.int64)


def read_idx(path: Path, expect_magic: int) -> np.ndarray:
    """An IDX file of unsigned bytes (gzipped if the name ends in .gz) as a uint8 array."""
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a file; it must be an IDX file")
    try:
        raw = gzip.open(path, "rb").read() if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"{path}: not a readable gzip file ({err}); replace it with the original IDX file") from None
    ndim = {2051: 3, 2049: 1}[expect_magic]
    header = 4 * (1 + ndim)
    magic = struct.unpack(">I", raw[:4])[0] if len(raw) >= 4 else None
    if magic != expect_magic:
        raise ValueError(
            f"{path}: IDX magic number {magic}, expected {expect_magic} "
            f"({'images' if expect_magic == 2051 else 'labels'}); is it the right file?"
        )
    if len(raw) < header:
        raise ValueError(f"{path}: {len(raw)} bytes, too short for an IDX header of {header} bytes")
    dims = list(struct.unpack(f">{ndim}I", raw[4:header]))
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: header says {dims} = {expected} bytes of data, file holds {len(raw) - header}; "
            f"the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


# --- CIFAR-10 (python batches) --------------------------------------------------------------


class _ArrayUnpickler(pickle.Unpickler):
    """Builds only the containers and numpy arrays of the CIFAR-10 batches; refuses any other global."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: only numpy arrays, dicts, lists, "
                f"bytes, str and ints are allowed in a CIFAR-10 batch"
            )
        return super().find_class(module, name)


def read_cifar_batch(path: Path) -> Tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch -> (x uint8 [N, 3, 32, 32], y int64 [N])."""
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a file; it must be a CIFAR-10 python batch")
    try:
        batch = _ArrayUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{path}: not a CIFAR-10 python batch ({exc})") from exc
    except Exception as exc:
        raise ValueError(
            f"{path}: could not be read as a pickled CIFAR-10 batch ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(batch, dict):
        raise ValueError(f"{path}: expected a pickled dict with b'data' and b'labels'; got {type(batch).__name__}")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ValueError(f"{path}: b'data' must be a uint8 array [N, 3072]; got {got}")
    if not isinstance(labels, (list, np.ndarray)) or len(labels) != len(data):
        raise ValueError(f"{path}: b'labels' must be a list of {len(data)} ints")
    y = np.asarray(labels, dtype=np.int64)
    if y.size and (y.min() < 0 or y.max() > 9):
        raise ValueError(f"{path}: labels must lie in 0..9; got {y.min()}..{y.max()}")
    return data.reshape(-1, 3, 32, 32), y


def _cifar(data_dir: Path, source: str) -> Tuple[np.ndarray, np.ndarray]:
    names: List[str] = list(_CIFAR_TRAIN) if source == "train" else ["test_batch"]
    folders = [data_dir / "cifar-10-batches-py", data_dir]
    folder = next((f for f in folders if all((f / n).is_file() for n in names)), None)
    if folder is None:
        raise FileNotFoundError(
            f"cifar10 {source} batches not found; searched {', '.join(str(f) for f in folders)} for "
            f"{', '.join(names)}. Unpack the CIFAR-10 python version into {folders[0]}/ "
            f"(from {_WHERE['cifar10']}); nothing is downloaded"
        )
    parts = [read_cifar_batch(folder / n) for n in names]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def image_shape(name: str) -> Tuple[int, int, int]:
    """(C, H, W) of a data set."""
    shapes: Dict[str, Tuple[int, int, int]] = {
        "digits": (1, 8, 8),
        "mnist": (1, 28, 28),
        "fashion-mnist": (1, 28, 28),
        "cifar10": (3, 32, 32),
    }
    if name not in shapes:
        raise ValueError(f"unknown image data set {name!r}; valid: {', '.join(IMAGE_DATASETS)}")
    return shapes[name]
