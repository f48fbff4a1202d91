"""`odeflow train <task>` (every task of odeflow/task_registry.py) and `odeflow compare timeseries`.

The task named on the command line gets its full parser; the others a one-line stub, so that
`odeflow train --help` lists every task without importing any of them.
"""

from __future__ import annotations

import argparse
import importlib
from typing import List, Optional

from ..task_registry import TASKS
from .commands import COMMANDS, COMPARE_TASKS, TRAIN_TASKS, first_word


def register_command(sub: argparse._SubParsersAction, name: str, rest: Optional[List[str]] = None) -> None:
    """Add `odeflow train` or `odeflow compare` (name) with the task in `rest` built in full
    (every task when rest is None)."""
    table = TRAIN_TASKS if name == "train" else COMPARE_TASKS
    tasks = sub.add_parser(name, help=COMMANDS[name][1]).add_subparsers(dest="task", required=True)
    chosen = first_word(rest) if rest is not None else None
    for task, (module, help_text) in table.items():
        if rest is not None and task != chosen:
            tasks.add_parser(task, help=help_text)
        elif module == "train_generated":
            from .train_generated import register_generated

            register_generated(tasks, TASKS[task])
        else:
            command = importlib.import_module(f".{module}", __package__)
            (command.register if name == "train" else command.register_compare)(tasks)
