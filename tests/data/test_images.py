import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from odeflow.data.images import image_shape, load_images


def _write_idx(path: Path, array: np.ndarray, magic: int, gz: bool) -> None:
    raw = struct.pack(f">{1 + array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as fh:
            fh.write(raw)
    else:
        path.write_bytes(raw)


def _idx_set(folder: Path, n_train: int, n_test: int, gz: bool, seed: int = 0):
    rng = np.random.RandomState(seed)
    arrays = {}
    for stem, n in (("train", n_train), ("t10k", n_test)):
        x = rng.randint(0, 256, size=(n, 28, 28)).astype(np.uint8)
        y = rng.randint(0, 10, size=n).astype(np.uint8)
        _write_idx(folder / f"{stem}-images-idx3-ubyte", x, 2051, gz)
        _write_idx(folder / f"{stem}-labels-idx1-ubyte", y, 2049, gz)
        arrays[stem] = (x, y)
    return arrays


@pytest.mark.parametrize(
    "name,layout,gz",
    [
        ("mnist", "mnist", True),
        ("mnist", "MNIST/raw", False),
        ("fashion-mnist", "fashion-mnist", False),
        ("fashion-mnist", "FashionMNIST/raw", True),
    ],
)
def test_idx_files_round_trip_with_val_split(tmp_path, name, layout, gz):
    arrays = _idx_set(tmp_path / layout, n_train=20, n_test=7, gz=gz)
    x_tr, y_tr = load_images(name, tmp_path, "train")
    x_va, y_va = load_images(name, tmp_path, "val")
    x_te, y_te = load_images(name, tmp_path, "test")
    assert x_tr.dtype == torch.uint8 and y_tr.dtype == torch.int64
    assert x_tr.shape == (18, 1, 28, 28) and x_va.shape == (2, 1, 28, 28) and x_te.shape == (7, 1, 28, 28)
    train_x, train_y = arrays["train"]
    np.testing.assert_array_equal(torch.cat([x_tr, x_va])[:, 0].numpy(), train_x)  # val = last 10 % of train
    np.testing.assert_array_equal(torch.cat([y_tr, y_va]).numpy(), train_y)
    np.testing.assert_array_equal(x_te[:, 0].numpy(), arrays["t10k"][0])
    np.testing.assert_array_equal(y_te.numpy(), arrays["t10k"][1])


def test_missing_idx_files_name_path_and_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"(?s)mnist.*train-images-idx3-ubyte\[\.gz\].*nothing is downloaded"):
        load_images("mnist", tmp_path, "train")
    with pytest.raises(ValueError, match="data_dir"):
        load_images("mnist", None, "train")


def test_malformed_idx_files_are_reported(tmp_path):
    folder = tmp_path / "mnist"
    _idx_set(folder, 4, 2, gz=False)
    (folder / "train-images-idx3-ubyte").write_bytes((folder / "train-images-idx3-ubyte").read_bytes()[:-5])
    with pytest.raises(ValueError, match="truncated"):
        load_images("mnist", tmp_path, "train")
    _idx_set(folder, 4, 2, gz=False)
    os.replace(folder / "t10k-labels-idx1-ubyte", folder / "t10k-images-idx3-ubyte")  # labels where images belong
    _write_idx(folder / "t10k-labels-idx1-ubyte", np.zeros(2, np.uint8), 2049, gz=False)
    with pytest.raises(ValueError, match="magic number 2049, expected 2051"):
        load_images("mnist", tmp_path, "test")


def _cifar_set(folder: Path, per_batch: int):
    folder.mkdir(parents=True)
    rng = np.random.RandomState(1)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.randint(0, 256, size=(per_batch, 3072)).astype(np.uint8)
        labels = [int(v) for v in rng.randint(0, 10, size=per_batch)]
        (folder / name).write_bytes(
            pickle.dumps(
                {b"batch_label": b"x", b"data": data, b"labels": labels, b"filenames": [b"f.png"] * per_batch},
                protocol=2,
            )
        )
        batches[name] = (data, labels)
    return batches


def test_cifar10_python_batches(tmp_path):
    batches = _cifar_set(tmp_path / "cifar-10-batches-py", per_batch=4)
    x_tr, y_tr = load_images("cifar10", tmp_path, "train")
    x_va, _ = load_images("cifar10", tmp_path, "val")
    x_te, y_te = load_images("cifar10", tmp_path, "test")
    assert x_tr.shape == (18, 3, 32, 32) and x_va.shape == (2, 3, 32, 32) and x_te.shape == (4, 3, 32, 32)
    data, labels = batches["test_batch"]
    # channel-major rows: the first 1024 bytes are the red plane
    np.testing.assert_array_equal(x_te[:, 0].reshape(4, -1).numpy(), data[:, :1024])
    np.testing.assert_array_equal(x_te[:, 2].reshape(4, -1).numpy(), data[:, 2048:])
    assert y_te.tolist() == labels
    assert x_tr[0].flatten().tolist() == batches["data_batch_1"][0][0].tolist()


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_cifar10_refuses_arbitrary_pickles(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    _cifar_set(folder, per_batch=2)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": _Evil(), b"labels": [0]}, protocol=2))
    with pytest.raises(ValueError, match="refusing to load .*system"):
        load_images("cifar10", tmp_path, "test")


def test_cifar10_missing_and_malformed(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"(?s)cifar-10-batches-py.*data_batch_1.*nothing is downloaded"):
        load_images("cifar10", tmp_path, "train")
    folder = tmp_path / "cifar-10-batches-py"
    _cifar_set(folder, per_batch=2)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(ValueError, match=r"uint8 array \[N, 3072\]"):
        load_images("cifar10", tmp_path, "test")


def test_digits_split_levels_and_shapes():
    parts = {s: load_images("digits", None, s) for s in ("train", "val", "test")}
    sizes = {s: len(p[0]) for s, p in parts.items()}
    assert sizes == {"train": 1294, "val": 144, "test": 359}
    x = torch.cat([p[0] for p in parts.values()])
    assert x.shape[1:] == image_shape("digits") and x.dtype == torch.uint8
    assert sorted(torch.unique(x).tolist()) == [round(v * 255 / 16) for v in range(17)]
    again = load_images("digits", None, "val")
    assert torch.equal(again[0], parts["val"][0]) and torch.equal(again[1], parts["val"][1])


@pytest.mark.parametrize(
    "name,split,match", [("svhn", "train", "valid: digits, mnist"), ("digits", "dev", "valid: train, val, test")]
)
def test_unknown_names(name, split, match):
    with pytest.raises(ValueError, match=match):
        load_images(name, None, split)
