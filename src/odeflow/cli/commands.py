"""The table of `odeflow` commands and `odeflow train` tasks: name -> (module in odeflow.cli, help).

Only the module of the command that is run gets imported (each one pulls in torch and its task),
so `odeflow --help`, `odeflow train --help` and usage errors answer without loading torch.
"""

from __future__ import annotations

from typing import Dict, Tuple

from ..task_registry import TASKS

COMMANDS: Dict[str, Tuple[str, str]] = {
    "demo": ("demo", "solve a known ODE with several methods, then train a CNF on 8gaussians (under a minute)"),
    "check-gradient": ("check_gradient", "Taylor derivative check (seed 000 eq. 13) of a gradient mode"),
    "train": ("train", "train a model (see `odeflow train TASK --help`)"),
    "compare": ("train", "compare gradient modes"),
    "evaluate": ("evaluate", "evaluate a trained CNF checkpoint, optionally re-discretized"),
    "sample": ("sample", "draw samples from a trained CNF checkpoint"),
    "discover": ("discover", "recover equations from a time series (neural ODE + SINDy; needs pysindy)"),
    "presets": ("presets", "list the shipped config presets (use one with --config NAME)"),
}

# `odeflow train TASK`: one entry per registry line (odeflow/task_registry.py); the module is the
# task's hand-written parser, or train_generated for a parser built from its config class
TRAIN_TASKS: Dict[str, Tuple[str, str]] = {
    name: (entry.cli or "train_generated", entry.description) for name, entry in TASKS.items()
}

COMPARE_TASKS: Dict[str, Tuple[str, str]] = {
    "timeseries": ("train_timeseries", "both modes from the same initialisation, over seeds"),
}


def help_of(name: str, table: Dict[str, Tuple[str, str]] = COMMANDS) -> str:
    """The one-line help of a command (or, with table=TRAIN_TASKS, of a task)."""
    return table[name][1]


def first_word(argv: list[str]) -> str | None:
    """The first argument that is not an option: the (sub)command being run, if any."""
    return next((a for a in argv if not a.startswith("-")), None)
