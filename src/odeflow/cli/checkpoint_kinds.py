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
    "sequence-classify": "odeflow.cli.evaluate_sequence:evaluate_sequence_classify",
    "image": "odeflow.cli.evaluate_image:evaluate_image",
}
SAMPLERS: Dict[str, str] = {
    "cnf": "odeflow.cli.sample:sample_cnf",
    "tabular": "odeflow.cli.tabular_runs:sample_tabular",
    "image": "odeflow.cli.train_image:sample_image",
}


def resolve_checkpoint(path: Path) -> Path:
    """A checkpoint file as given, or for a run folder its best.pt (else last.pt)."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(
            f"run folder {path} has no best.pt or last.pt; pass a run folder written by "
            "`odeflow train ...` or one of its checkpoint files"
        )
    return path


def handler_for(table: Dict[str, str], path: Path, command: str) -> Tuple[Callable[..., int], Dict[str, Any]]:
    """(the function for the checkpoint's kind, the checkpoint) or a clear error."""
    from ..training.checkpoint import load_checkpoint

    state = load_checkpoint(resolve_checkpoint(path))
    kind = state.get("kind")
    if kind not in table:
        raise ValueError(
            f"`odeflow {command}` does not handle {kind!r} checkpoints ({path}); "
            f"it handles runs of: {', '.join(sorted(table))}"
        )
    module, name = table[kind].split(":")
    return getattr(importlib.import_module(module), name), state
