"""The training engine shared by every task: Trainer loop, schedules, checkpoints (resume, safe
loading), metrics (CSV, TensorBoard), progress (tqdm), torch.distributed. Knows no task.

Public names load on first use (PEP 562), so the torch-free config modules under it (config,
config_types) import without torch: the command line builds its parsers from them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Dict, List

_EXPORTS: Dict[str, str] = {
    "UnsafeCheckpointError": ".checkpoint",
    "load_checkpoint": ".checkpoint",
    "save_checkpoint": ".checkpoint",
    "TrainingConfig": ".config",
    "RunContext": ".context",
    "Distributed": ".distributed",
    "TrainingError": ".errors",
    "TrainingInterrupted": ".errors",
    "AuxiliaryStep": ".task",
    "StepOutput": ".task",
    "Task": ".task",
    "Trainer": ".trainer",
}

__all__: List[str] = list(_EXPORTS)

if TYPE_CHECKING:  # what type checkers see; at run time the names load lazily (below)
    from .checkpoint import UnsafeCheckpointError as UnsafeCheckpointError
    from .checkpoint import load_checkpoint as load_checkpoint
    from .checkpoint import save_checkpoint as save_checkpoint
    from .config import TrainingConfig as TrainingConfig
    from .context import RunContext as RunContext
    from .distributed import Distributed as Distributed
    from .errors import TrainingError as TrainingError
    from .errors import TrainingInterrupted as TrainingInterrupted
    from .task import AuxiliaryStep as AuxiliaryStep
    from .task import StepOutput as StepOutput
    from .task import Task as Task
    from .trainer import Trainer as Trainer


def __getattr__(name: str) -> Any:
    where = _EXPORTS.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(where, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(_EXPORTS))
