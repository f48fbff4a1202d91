"""A run folder: config.json, metrics.csv, checkpoints (see checkpoint.py), summary.json, figures."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Dict, List


class RunFolder:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    def write_config(self, config: Dict[str, Any]) -> None:
        self.write_json("config.json", config)

    def write_json(self, name: str, data: Any) -> Path:
        """Atomically (temporary file, then rename)."""
        target = self.path / name
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1, default=str))
        os.replace(tmp, target)
        return target

    def file(self, name: str) -> Path:
        return self.path / name


def read_metrics(path: Path) -> List[Dict[str, float]]:
    """Rows of a metrics CSV as floats; empty cells (e.g. no validation that iteration) are NaN."""
    with Path(path).open(newline="") as fh:
        return [{k: float(v) if v != "" else float("nan") for k, v in row.items()} for row in csv.DictReader(fh)]
