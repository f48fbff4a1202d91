"""Command-line options that fill a task's config dataclass, shared by every `odeflow train` task.

Settings come from the dataclass defaults, then a config file (`--config run.toml|json`), then
the options given on the command line. With `--resume RUN_DIR` they come from RUN_DIR/last.pt
instead, and only what the command line gives on top may change (the Trainer checks which).
Numbers that must be positive are checked by argparse (a usage error, not a traceback).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Type


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


# option -> (config field, argparse keyword arguments); common to every task
ENGINE_OPTIONS: Dict[str, Tuple[str, Dict[str, Any]]] = {
    "--iterations": ("iterations", dict(type=positive_int)),
    "--batch": ("batch", dict(type=positive_int, help="global batch (split over torchrun processes)")),
    "--lr": ("lr", dict(type=positive_float)),
    "--seed": ("seed", dict(type=int)),
    "--val-every": ("val_every", dict(type=positive_int)),
    "--checkpoint-every": ("checkpoint_every", dict(type=positive_int, help="write last.pt every N iterations")),
    "--patience": ("patience", dict(type=positive_int, help="early stopping: validations without improvement")),
    "--time-budget": ("time_budget", dict(type=positive_float, help="stop after this many seconds of training")),
    "--optimizer": ("optimizer", dict(choices=["adam", "adamw", "sgd"])),
    "--weight-decay": ("weight_decay", dict(type=non_negative_float)),
    "--lr-schedule": ("lr_schedule", dict(choices=["constant", "cosine"])),
    "--grad-clip": ("grad_clip", dict(type=positive_float, help="clip the global gradient norm")),
    "--device": ("device", dict(choices=["cpu", "cuda", "auto"])),
    "--cuda-graph": ("cuda_graph", dict(action="store_true",
                                        help="capture each training step in a CUDA graph (GPU, fixed-step Disc-Opt)")),
}


def add_config_options(p: argparse.ArgumentParser, cls: Type, options: Dict[str, Tuple[str, Dict[str, Any]]],
                       default_out: str, config_file: bool = True) -> None:
    """Options of the task's own table and of the engine; unset options stay out of the namespace."""
    defaults = cls()
    if config_file:
        p.add_argument("--config", type=Path, default=None, help=f"JSON or TOML file with {cls.__name__} fields")
    for flag, (name, kwargs) in {**ENGINE_OPTIONS, **options}.items():
        kwargs = dict(kwargs)
        kwargs["help"] = f"{kwargs.get('help', '')} (default {getattr(defaults, name)})".strip()
        p.add_argument(flag, dest=name, default=argparse.SUPPRESS, **kwargs)
    p.add_argument("--out", type=Path, default=argparse.SUPPRESS, help=f"run folder (default {default_out})")
    p.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its last.pt (exactly where it stopped)")
    p.add_argument("--tensorboard", action="store_true", help="also write TensorBoard event files (RUN/tensorboard)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def read_config_file(path: Path) -> Dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    if path.suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # Python < 3.11
            raise ValueError(f"config file {path}: TOML needs Python 3.11 or later; use a .json file") from None
        parse, errors = tomllib.loads, (tomllib.TOMLDecodeError,)
    else:
        parse, errors = json.loads, (json.JSONDecodeError,)
    try:
        data = parse(path.read_text())
    except errors as err:
        raise ValueError(f"config file {path} cannot be parsed: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a table/object of config fields")
    return data


def make_config(cls: Type, args: argparse.Namespace, default_out: str,
                adjust=None) -> Tuple[Any, Path, bool]:
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
    return cls(**values), Path(out) if out is not None else Path(default_out), False
