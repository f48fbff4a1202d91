"""What the Trainer tells a task about the run: device, ranks, run folder, seed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import torch

from .distributed import Distributed
from .run_folder import RunFolder


@dataclass
class RunContext:
    device: torch.device
    dist: Distributed
    folder: Optional[RunFolder]  # None on ranks other than 0 and for runs without a folder
    seed: int
    iteration: int = 0  # the iteration being run (or the last one, in finish)
    history: List[Dict[str, Any]] = field(default_factory=list)  # the metrics rows so far
    quiet: bool = False  # --quiet: no progress bars or notes from the task

    @property
    def is_main(self) -> bool:
        return self.dist.rank == 0
