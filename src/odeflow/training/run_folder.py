"""A run folder: config.json, metrics.csv, checkpoints (see checkpoint.py), summary.json, figures.

A new run never writes into an earlier run's folder: `check_run_folder` refuses it (before any
work) unless the user asked to resume or to overwrite, and the folder itself is created only
once the task's data and model were built, so that a failed command leaves nothing behind.
"""

from __future__ import annotations

import atexit
import csv
import json
import os
import shutil
from pathlib import Path
from typing import Any, Dict, List

# files that mark a folder as an odeflow run (an `--overwrite` deletes only such folders)
RUN_FILES = ("config.json", "summary.json", "metrics.csv", "last.pt", "best.pt", "equations.txt", "comparison.json")


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


def is_run_folder(path: Path) -> bool:
    """True when ``path`` is a folder holding an earlier run's files."""
    path = Path(path)
    return path.is_dir() and any((path / name).exists() for name in RUN_FILES)


def check_run_folder(path: Path, overwrite: bool = False, resumable: bool = True, flag: str = "--out") -> None:
    """Raise ValueError (before any work) when a new run cannot use ``path`` as its run folder:
    a file, a folder inside a file, a non-empty folder (unless ``overwrite`` and it is a run
    folder), or a place that cannot be written."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(
            f"{flag} {path} is a file, not a folder; name a new folder for the run (e.g. {flag} {path}_run)"
        )
    ancestor = path
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise ValueError(
            f"{flag} {path}: {ancestor} is a file, so no folder can be made under it; choose another {flag}"
        )
    if ancestor.exists() and not os.access(ancestor, os.W_OK):
        raise ValueError(f"{flag} {path}: {ancestor} is not writable; choose a folder you can write to")
    if path.is_dir() and any(path.iterdir()):
        if not overwrite:
            resume = f"continue it with --resume {path}, " if resumable and (path / "last.pt").is_file() else ""
            raise ValueError(
                f"run folder {path} already exists and is not empty; {resume}replace it with --overwrite, "
                f"or choose another {flag}"
            )
        if not is_run_folder(path):
            raise ValueError(
                f"--overwrite: {path} is not an odeflow run folder (none of {', '.join(RUN_FILES)}); "
                f"refusing to delete it; choose another {flag}"
            )


def clear_run_folder(path: Path) -> None:
    """Replace an earlier run's folder (checked by `check_run_folder` with overwrite=True) without
    losing it to a command that fails before its new run starts: the old folder is moved aside
    now, deleted when this process ends with a new run in its place, and moved back otherwise
    (an argument or data error after ``--overwrite`` keeps the earlier run)."""
    path = Path(path)
    if not is_run_folder(path):
        return
    aside = path.with_name(f".{path.name}.replaced-{os.getpid()}")
    if aside.exists():
        shutil.rmtree(aside)
    os.replace(path, aside)
    atexit.register(_settle_replaced, path, aside)


def _settle_replaced(path: Path, aside: Path) -> None:
    """At exit: delete the set-aside run when a new run took its place, else put it back."""
    if not aside.exists():
        return
    if is_run_folder(path):
        shutil.rmtree(aside, ignore_errors=True)
        return
    if path.is_dir() and not any(path.iterdir()):
        path.rmdir()
    if not path.exists():
        os.replace(aside, path)


def read_metrics(path: Path) -> List[Dict[str, float]]:
    """Rows of a metrics CSV as floats; empty cells (e.g. no validation that iteration) are NaN."""
    with Path(path).open(newline="") as fh:
        return [{k: float(v) if v != "" else float("nan") for k, v in row.items()} for row in csv.DictReader(fh)]
