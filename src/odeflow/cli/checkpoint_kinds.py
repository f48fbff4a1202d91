"""Which function evaluates or samples a checkpoint, by the task `kind` stored in it.

A task whose runs can be evaluated or sampled adds one line to each table:
"kind": "module:function", the function taking (args, state) with state the loaded checkpoint.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable, Dict, Tuple

EVALUATORS: Dict[str, str] = {
    "cnf": "odeflow.cli.evaluate:evaluate_cnf",
    "tabular": "odeflow.cli.tabular_runs:evaluate_tabular",
    "classify": "odeflow.cli.evaluate_classify:evaluate_classify",
    "image": "odeflow.cli.train_image:evaluate_image",
}
SAMPLERS: Dict[str, str] = {
    "cnf": "odeflow.cli.sample:sample_cnf",
    "tabular": "odeflow.cli.tabular_runs:sample_tabular",
    "image": "odeflow.cli.train_image:sample_image",
}


def handler_for(table: Dict[str, str], path: Path, command: str) -> Tuple[Callable[..., int], Dict[str, Any]]:
    """(the function for the checkpoint's kind, the checkpoint) or a clear error."""
    from ..training.checkpoint import load_checkpoint

    state = load_checkpoint(path)
    kind = state.get("kind")
    if kind not in table:
        raise ValueError(
            f"`odeflow {command}` does not handle {kind!r} checkpoints ({path}); "
            f"it handles runs of: {', '.join(sorted(table))}"
        )
    module, name = table[kind].split(":")
    return getattr(importlib.import_module(module), name), state
