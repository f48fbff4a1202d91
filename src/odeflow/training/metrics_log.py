"""metrics.csv (always) and TensorBoard event files (with --tensorboard), one row per iteration.

Rows are flushed one by one, so nothing logged is lost when a run dies. When a row brings a
new column (e.g. the first validation), the file is rewritten with the wider header. On resume
the rows from the checkpoint's iteration on are dropped first, so that every iteration appears
exactly once in the file of a resumed run.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, TextIO


class MetricsLog:
    _fh: TextIO  # the open file (opened again by every _rewrite)
    _writer: csv.DictWriter[str]

    def __init__(self, path: Path, resume_from: Optional[int] = None, tensorboard_dir: Optional[Path] = None) -> None:
        self.path = Path(path)
        self.rows: List[Dict[str, Any]] = []
        self.fields: List[str] = []
        if resume_from is not None and self.path.is_file():
            with self.path.open(newline="") as fh:
                reader = csv.DictReader(fh)
                self.fields = list(reader.fieldnames or [])
                self.rows = [r for r in reader if int(float(r["iteration"])) < resume_from]
        self._rewrite()
        self.tb = _tensorboard_writer(tensorboard_dir) if tensorboard_dir is not None else None

    def log(self, row: Dict[str, Any]) -> None:
        new = [k for k in row if k not in self.fields]
        self.rows.append(row)
        if new:
            self.fields += new
            self._rewrite()
        else:
            self._writer.writerow(row)
            self._fh.flush()
        if self.tb is not None:
            step = int(row["iteration"])
            for key, value in row.items():
                if (
                    key != "iteration"
                    and isinstance(value, (int, float))
                    and not isinstance(value, bool)
                    and math.isfinite(value)
                ):
                    self.tb.add_scalar(key, value, step)

    def close(self) -> None:
        self._fh.close()
        if self.tb is not None:
            self.tb.close()

    def _rewrite(self) -> None:
        if getattr(self, "_fh", None) is not None:
            self._fh.close()
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.fields, restval="")
            if self.fields:
                writer.writeheader()
            writer.writerows(self.rows)
        os.replace(tmp, self.path)
        self._fh = self.path.open("a", newline="")
        self._writer = csv.DictWriter(self._fh, fieldnames=self.fields, restval="")


def _tensorboard_writer(folder: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ValueError(
            "--tensorboard needs the tensorboard package: pip install 'odeflow[tensorboard]' "
            "(or pip install tensorboard); metrics.csv is written either way"
        ) from None
    return SummaryWriter(log_dir=str(folder))
