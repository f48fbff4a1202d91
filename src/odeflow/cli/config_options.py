"""Command-line options that fill a task's config dataclass, shared by every `odeflow train` task.

Settings come from the dataclass defaults, then a config file (`--config run.toml|json`), then
the options given on the command line. With `--resume RUN_DIR` they come from RUN_DIR/last.pt
instead, and only what the command line gives on top may change (the Trainer checks which).
Numbers that must be positive are checked by argparse (a usage error, not a traceback). A new
run refuses an existing run folder (`--resume` continues it, `--overwrite` replaces it).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Type

from ..training.run_folder import check_run_folder, clear_run_folder
from .config_cli import fraction, non_negative_float, positive_float, positive_int

__all__ = [
    "make_config",
    "read_config_file",
    "positive_int",
    "positive_float",
    "non_negative_float",
    "fraction",
]


def read_config_file(path: Path) -> Dict[str, Any]:
    """A TOML or JSON config file (a path, or a preset's name) as a dict: see `preset_files.read_config`."""
    from ..preset_files import read_config

    return read_config(path)


def make_config(cls: Type, args: argparse.Namespace, default_out: str, adjust=None) -> Tuple[Any, Path, bool]:
    """(config, run folder, resume?) from the defaults, config file or checkpoint, and options."""
    fields = {f.name for f in dataclasses.fields(cls)}
    given = {k: v for k, v in vars(args).items() if k in fields}
    resume: Optional[Path] = getattr(args, "resume", None)
    out = getattr(args, "out", None)
    if resume is not None:
        from ..training.checkpoint import load_checkpoint

        if out is not None and Path(out).resolve() != Path(resume).resolve():
            raise ValueError(f"--out {out} differs from --resume {resume}; a resumed run continues in its own folder")
        if getattr(args, "config", None) is not None:
            raise ValueError("--config cannot be combined with --resume: the settings come from the run's last.pt")
        last = Path(resume) / "last.pt"
        if not last.is_file():
            raise FileNotFoundError(f"cannot resume: {last} does not exist (is {resume} a run folder with a last.pt?)")
        if getattr(args, "overwrite", False):
            raise ValueError("--overwrite cannot be combined with --resume: a resumed run continues its folder")
        values = {k: v for k, v in load_checkpoint(last)["config"].items() if k in fields}
        values.update(given)
        return cls(**values), Path(resume), True
    values = read_config_file(args.config) if getattr(args, "config", None) else {}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(f"config file {args.config}: unknown keys {unknown}; valid: {', '.join(sorted(fields))}")
    values.update(given)
    if adjust is not None:
        values = adjust(values)
    cfg = cls(**values)
    if hasattr(cfg, "validate"):
        cfg.validate()  # every setting checked before the run folder is touched
    folder = Path(out) if out is not None else Path(default_out)
    overwrite = bool(getattr(args, "overwrite", False))
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun only rank 0 owns (and may replace) the run folder
        check_run_folder(folder, overwrite=overwrite)
        if overwrite:
            clear_run_folder(folder)
    return cfg, folder, False
