"""`odeflow.train(name, config, out)`: build the task of a registry line and run the Trainer on it.

Every task trains the same way (see odeflow/task_registry.py for the table and training/task.py for
what a task provides), so this is the one place a task meets the engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Tuple, Union

from ..task_registry import task_entry
from ..training import Trainer
from ..training.task import Task


def build_task(name: str, config: Any, **task_options: Any) -> Task:
    """The Task of registry line ``name`` on ``config`` (which must be that task's config class)."""
    entry = task_entry(name)
    expected = entry.config_class()
    if not isinstance(config, expected):
        raise TypeError(f"task {name!r} takes a {expected.__name__}, got {type(config).__name__}")
    return entry.task_class()(config, **task_options)


def fit_task(
    name: str,
    config: Any,
    out: Union[str, Path, None] = None,
    progress: bool = True,
    resume: bool = False,
    tensorboard: bool = False,
    **task_options: Any,
) -> Tuple[Task, Dict[str, Any]]:
    """Train task ``name`` and return (the task, summary.json's content)."""
    task = build_task(name, config, **task_options)
    out = Path(out) if out is not None else None
    summary = Trainer(task, out, quiet=not progress, tensorboard=tensorboard, resume=resume).fit()
    return task, summary


def train(
    name: str,
    config: Any,
    out: Union[str, Path, None] = None,
    progress: bool = True,
    resume: bool = False,
    tensorboard: bool = False,
    **task_options: Any,
) -> Dict[str, Any]:
    """Train (or, with ``resume``, continue in ``out``) task ``name`` of the registry on ``config``
    and return summary.json's content. ``task_options`` go to the task's constructor (e.g. the
    tabular task's ``data``)."""
    return fit_task(name, config, out, progress, resume, tensorboard, **task_options)[1]


__all__ = ["build_task", "fit_task", "train"]
