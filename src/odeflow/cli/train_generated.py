"""`odeflow train NAME` for a registry task without a hand-written parser: every option comes from
the task's config dataclass (see config_cli.py), the run goes through `odeflow.train`, and the
task's ``describe`` gives the closing line."""

from __future__ import annotations

import argparse

from ..task_registry import TaskEntry
from .config_cli import add_options, options_of
from .config_options import make_config
from .training_run import report_errors


def register_generated(train_sub: argparse._SubParsersAction, entry: TaskEntry) -> None:
    """Add `odeflow train <entry.name>` with the options of the entry's config class."""
    config_class = entry.config_class()
    p = train_sub.add_parser(entry.name, help=entry.description)
    add_options(p, config_class, options_of(config_class), entry.default_out)
    p.set_defaults(run=_runner(entry))


def _runner(entry: TaskEntry):
    @report_errors
    def run(args: argparse.Namespace) -> int:
        from ..tasks.run import fit_task
        from ..training.distributed import is_main_process

        cfg, out, resume = make_config(entry.config_class(), args, entry.default_out)
        task, summary = fit_task(
            entry.name, cfg, out, progress=not args.quiet, resume=resume, tensorboard=args.tensorboard
        )
        if is_main_process():
            print(f"{task.describe(summary)}; run folder {out}")
        return 0

    return run
