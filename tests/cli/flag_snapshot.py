"""Every `odeflow train <task>` option: flag -> dest, default shown, type, choices, nargs, action.

`python tests/cli/flag_snapshot.py > tests/cli/train_flags.json` rewrites the pinned table (only
when a flag is meant to change)."""

import argparse
import json
import sys

from odeflow.cli.commands import TRAIN_TASKS
from odeflow.cli.main import build_parser


def snapshot(task):
    parser = build_parser(["train", task])
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["train"]
    tp = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction)).choices[task]
    opts = {}
    for a in tp._actions:
        if not a.option_strings or "-h" in a.option_strings:
            continue
        help_text = a.help or ""
        opts[" ".join(a.option_strings)] = dict(
            dest=a.dest,
            type=getattr(a.type, "__name__", None) if a.type is not None else None,
            choices=list(a.choices) if a.choices else None,
            nargs=a.nargs,
            action=type(a).__name__,
            const=a.const if isinstance(a.const, (str, int, float, bool, type(None))) else str(a.const),
            default="==SUPPRESS=="
            if a.default is argparse.SUPPRESS
            else a.default
            if isinstance(a.default, (str, int, float, bool, type(None)))
            else str(a.default),
            default_in_help=help_text.rsplit("(default ", 1)[-1].rstrip(")") if "(default " in help_text else None,
        )
    return opts


if __name__ == "__main__":
    json.dump({task: snapshot(task) for task in TRAIN_TASKS}, sys.stdout, indent=1, sort_keys=True)
