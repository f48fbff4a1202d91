"""Checkpoints: plain data and tensors, written atomically, loaded with weights_only=True.

A checkpoint is a dict whose `model` entry is the model's state_dict, with the task `kind`,
its `config` (plain data), and for resuming the optimizers, schedulers, iteration, elapsed
training time, early-stopping state and every random number generator. Loading never runs
code from the file: torch.load(weights_only=True) refuses any pickled Python object beyond
tensors and plain containers, and the refusal is turned into an error that says so.
"""

from __future__ import annotations

import os
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any, Dict, Tuple

import numpy as np
import torch


class UnsafeCheckpointError(ValueError):
    """The file holds pickled Python objects that weights-only loading refuses to build."""


def save_checkpoint(state: Dict[str, Any], path: Path) -> Path:
    """Write atomically: to a temporary file in the same folder, then rename over the target."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: Path, map_location: Any = "cpu") -> Dict[str, Any]:
    """Load an odeflow checkpoint safely; a clear error for missing, corrupt or unsafe files."""
    path = Path(path)
    if path.is_dir():
        hint = " (a run folder? give RUN/best.pt or RUN/last.pt)" if (path / "last.pt").is_file() else ""
        raise ValueError(f"checkpoint {path} is a folder, not a file{hint}")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    _check_crc(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "global" in str(err).lower():  # a pickled class or function: refused, never called
            raise UnsafeCheckpointError(
                f"refused to load {path}: it contains pickled Python objects, not only tensors and plain data, "
                "and unpickling them could run arbitrary code. odeflow checkpoints never contain such objects; "
                "only use files written by odeflow (or re-save the model's state_dict with torch.save)"
            ) from None
        raise _corrupt(path, err) from None
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise _corrupt(path, err) from None
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise ValueError(f"checkpoint {path} is not an odeflow checkpoint (no 'model'/'config' entries)")
    return state


def _check_crc(path: Path) -> None:
    """torch.load does not check the CRC-32 that torch.save writes for every record of its zip
    archive, so flipped bytes inside a tensor would load as different weights: check them here."""
    try:
        is_zip = zipfile.is_zipfile(path)
    except zipfile.BadZipFile as err:  # an end record that claims several disks
        raise _corrupt(path, err) from None
    if not is_zip:
        return  # not a zip archive (an old-format or foreign file): torch.load names the problem below
    try:
        with zipfile.ZipFile(path) as archive:
            # bit 0x10 of the external attributes marks a folder: torch's zip reader then reads no
            # bytes for that record and a tensor loads as uninitialized memory
            folders = [i.filename for i in archive.infolist() if i.external_attr & 0x10]
            bad = archive.testzip()
    except Exception as err:  # noqa: BLE001 - zipfile raises many kinds on a damaged archive
        raise _corrupt(path, err) from None
    if folders:
        bad = folders[0]
    if bad is not None:
        raise ValueError(
            f"checkpoint {path} is corrupt: its record {bad!r} fails its CRC-32 check (damaged on disk or in "
            "transfer); re-run training or use an earlier checkpoint"
        )


def _corrupt(path: Path, err: Exception) -> ValueError:
    text = str(err)
    if "Weights only load failed" in text:  # torch's advice to load unsafely does not apply here
        detail = next((ln.strip() for ln in text.splitlines() if ln.strip().startswith("Unsupported")), "")
        text = f"not a weights-only PyTorch file{': ' + detail if detail else ''}"
    else:
        text = text.strip().splitlines()[0][:200] if text.strip() else ""
    return ValueError(
        f"checkpoint {path} is corrupt or not an odeflow checkpoint ({type(err).__name__}: {text}); "
        "re-run training or use an earlier checkpoint"
    )


def rng_state() -> Dict[str, Any]:
    """Every generator a training step may draw from, as plain data and tensors."""
    legacy = np.random.get_state(legacy=True)
    if not isinstance(legacy, tuple):  # numpy's stub allows the dict form too
        raise TypeError(f"numpy's legacy random state is a tuple; got {type(legacy).__name__}")
    kind, keys, pos, has_gauss, cached = legacy
    state: Dict[str, Any] = dict(
        torch=torch.get_rng_state(),
        numpy=dict(
            kind=kind,
            keys=torch.from_numpy(keys.astype(np.int64)),
            pos=int(pos),
            has_gauss=int(has_gauss),
            cached=float(cached),
        ),
        python=_python_state_to_plain(random.getstate()),
    )
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _python_state_to_plain(s: Any) -> list:
    version, internal, gauss = s
    return [version, list(internal), gauss]


def model_from_checkpoint(path: Path, kind: str, config_cls: type, build: Any) -> Tuple[Any, Any]:
    """(model in eval mode, its config) from a run's best.pt/last.pt: the task `kind` is checked,
    the config rebuilt from its plain data (unknown keys ignored), the model built and loaded
    (with the EMA's averaged weights where the run kept one: what it was validated and tested with)."""
    import dataclasses

    state = load_checkpoint(path)
    if state.get("kind") != kind:
        raise ValueError(
            f"checkpoint {path} holds a {state.get('kind', 'unknown')!r} model, not a {kind!r} one; "
            f"pass a best.pt or last.pt written by `odeflow train {kind}`"
        )
    known = {f.name for f in dataclasses.fields(config_cls)}
    cfg = config_cls(**{k: v for k, v in state["config"].items() if k in known})
    model = build(cfg)
    from .ema import averaged_weights

    model.load_state_dict(averaged_weights(state))  # a run that kept an EMA: its averaged weights
    model.eval()
    return model, cfg
