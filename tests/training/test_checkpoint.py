"""Checkpoints are plain data, written atomically, and loaded without running code."""

import pathlib

import pytest
import torch

from odeflow.cli.main import main
from odeflow.training.checkpoint import (
    UnsafeCheckpointError,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)


class _Payload:
    """Unpickling this would create a file: the classic malicious-checkpoint payload."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_crafted_pickle_is_refused_and_runs_nothing(tmp_path, capsys):
    marker = tmp_path / "pwned"
    bad = tmp_path / "last.pt"
    torch.save({"model": {}, "config": {}, "payload": _Payload(marker)}, bad)
    assert not marker.exists()
    with pytest.raises(UnsafeCheckpointError, match="could run arbitrary code"):
        load_checkpoint(bad)
    assert main(["evaluate", str(bad)]) == 2
    assert "refused to load" in capsys.readouterr().err
    assert main(["sample", str(bad), "--out", str(tmp_path / "s.csv")]) == 2
    assert not marker.exists()


def test_round_trip_with_weights_only_and_atomic_write(tmp_path):
    state = dict(model={"w": torch.randn(3)}, config={"lr": 1e-3, "hidden": [8, 8]}, rng=rng_state(), iteration=4)
    path = save_checkpoint(state, tmp_path / "last.pt")
    assert not (tmp_path / "last.pt.tmp").exists()
    loaded = torch.load(path, weights_only=True)  # the plain-data promise, checked by torch itself
    assert torch.equal(loaded["model"]["w"], state["model"]["w"]) and loaded["config"] == state["config"]


def test_rng_state_restores_every_generator():
    import random

    import numpy as np

    state = rng_state()
    first = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(state)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], again[0]) and (first[1] == again[1]).all() and first[2] == again[2]


def test_truncated_checkpoint_is_reported_as_corrupt(tmp_path):
    path = save_checkpoint(dict(model={"w": torch.randn(100)}, config={}), tmp_path / "x.pt")
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(ValueError, match="corrupt"):
        load_checkpoint(path)


def _zip_records(raw: bytes):
    """(offset of each central-directory record, its file name) of a zip archive."""
    import struct

    found, at = [], raw.find(b"PK\x01\x02")
    while at >= 0:
        name_len = struct.unpack_from("<H", raw, at + 28)[0]
        found.append((at, raw[at + 46 : at + 46 + name_len].decode()))
        at = raw.find(b"PK\x01\x02", at + 46)
    return found


def test_a_record_marked_as_a_folder_is_corrupt_not_uninitialized_weights(tmp_path):
    # one flipped bit (0x10 of a record's external attributes, the MS-DOS folder flag) made torch's
    # zip reader skip the tensor's bytes: the checkpoint loaded with uninitialized memory as weights
    path = tmp_path / "last.pt"
    save_checkpoint({"model": {"w": torch.randn(3, dtype=torch.float64)}}, path)
    raw = bytearray(path.read_bytes())
    at = next(at for at, name in _zip_records(bytes(raw)) if name.endswith("data/0"))
    raw[at + 38] |= 0x10
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="corrupt"):
        load_checkpoint(path)


@pytest.mark.parametrize("field", [0, 30, 34])
def test_a_damaged_central_directory_is_corrupt(tmp_path, field):
    # a bad record signature, a garbled name length, a disk number: Python's zip reader refuses the
    # archive; the checkpoint is refused too, with no CRC check skipped on the way
    path = tmp_path / "last.pt"
    save_checkpoint({"model": {"w": torch.randn(3, dtype=torch.float64)}}, path)
    raw = bytearray(path.read_bytes())
    at = _zip_records(bytes(raw))[1][0]
    raw[at + field] ^= 0x5A
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="corrupt"):
        load_checkpoint(path)
