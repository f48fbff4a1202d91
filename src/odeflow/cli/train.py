"""`odeflow train <task>` (one module per task) and `odeflow compare timeseries`.

The task named on the command line gets its full parser; the others a one-line stub, so that
`odeflow train --help` lists every task without importing any of them.
"""

from __future__ import annotations

import argparse
import importlib
from typing import List, Optional

from .commands import COMMANDS, COMPARE_TASKS, TRAIN_TASKS, first_word


def register_command(sub: argparse._SubParsersAction, name: str, rest: Optional[List[str]] = None) -> None:
    """Add `odeflow train` or `odeflow compare` (name) with the task in `rest` built in full
    (every task when rest is None)."""
    table = TRAIN_TASKS if name == "train" else COMPARE_TASKS
    tasks = sub.add_parser(name, help=COMMANDS[name][1]).add_subparsers(dest="task", required=True)
    chosen = first_word(rest) if rest is not None else None
    for task, (module, help_text) in table.items():
        if rest is None or task == chosen:
            command = importlib.import_module(f".{module}", __package__)
            (command.register if name == "train" else command.register_compare)(tasks)
        else:
            tasks.add_parser(task, help=help_text)
