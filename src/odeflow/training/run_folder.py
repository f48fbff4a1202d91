"""A run folder: config.json, metrics.csv, checkpoints written atomically, figures.

Nothing already written is lost when a run fails: metrics are appended and flushed row by
row, and a checkpoint is written to a temporary file and renamed over the old one.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch


class RunFolder:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._metrics_file = None
        self._writer: Optional[csv.DictWriter] = None

    def write_config(self, config: Dict[str, Any]) -> None:
        (self.path / "config.json").write_text(json.dumps(config, indent=1, default=str))

    def log(self, row: Dict[str, Any], name: str = "metrics.csv") -> None:
        if self._writer is None:
            self._metrics_file = (self.path / name).open("w", newline="")
            self._writer = csv.DictWriter(self._metrics_file, fieldnames=list(row))
            self._writer.writeheader()
        self._writer.writerow(row)
        self._metrics_file.flush()

    def close(self) -> None:
        if self._metrics_file is not None:
            self._metrics_file.close()
            self._metrics_file, self._writer = None, None

    def save_checkpoint(self, state: Dict[str, Any], name: str = "checkpoint.pt") -> Path:
        target = self.path / name
        tmp = target.with_suffix(target.suffix + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, target)
        return target

    def file(self, name: str) -> Path:
        return self.path / name


def load_checkpoint(path: Path) -> Dict[str, Any]:
    """Load a checkpoint, turning a truncated or foreign file into a clear error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises several types for corrupt files
        raise ValueError(f"checkpoint {path} is corrupt or not an odeflow checkpoint ({type(err).__name__}: "
                         f"{err}); re-run training or use an earlier checkpoint") from None
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise ValueError(f"checkpoint {path} is not an odeflow checkpoint (no 'model'/'config' entries)")
    return state


def read_metrics(path: Path) -> List[Dict[str, float]]:
    """Rows of a metrics CSV as floats; empty cells (e.g. no validation that iteration) are NaN."""
    with Path(path).open(newline="") as fh:
        return [{k: float(v) if v != "" else float("nan") for k, v in row.items()} for row in csv.DictReader(fh)]
