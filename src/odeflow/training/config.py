"""Settings every task shares with the engine; a task's config dataclass extends this one.

Everything here is plain data (it goes to config.json and into checkpoints) and is checked by
``validate`` with a message naming the field and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Literal, Optional

from .config_types import NonNegativeFloat, PositiveFloat, PositiveInt

OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("constant", "cosine")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class TrainingConfig:
    iterations: PositiveInt = 1000
    batch: PositiveInt = 512  # global batch (split over torchrun processes)
    lr: PositiveFloat = 1e-3
    seed: int = 0
    val_every: PositiveInt = 100
    checkpoint_every: PositiveInt = 100  # write last.pt every N iterations (and at the end, on SIGTERM/SIGINT)
    patience: Optional[PositiveInt] = None  # early stopping: validations without improvement
    min_delta: NonNegativeFloat = 0.0  # early stopping: an improvement must beat the reference by more than this
    time_budget: Optional[PositiveFloat] = None  # stop after this many seconds of training
    schedule: Optional[List[Dict[str, Any]]] = None  # multilevel stages (see training.schedule)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    weight_decay: NonNegativeFloat = 0.0
    lr_schedule: Literal["constant", "cosine"] = "constant"  # 'cosine': cosine decay over `iterations`
    grad_clip: Optional[PositiveFloat] = None  # clip the global gradient norm
    device: Literal["cpu", "cuda", "auto"] = "cpu"  # 'auto': cuda when available
    cuda_graph: bool = False  # capture each training step in a CUDA graph (GPU, fixed-step Disc-Opt)
    diverge_factor: PositiveFloat = 1000.0  # stop when the loss stays this many times above its best

    def validate(self) -> None:
        """Raise ValueError naming the first setting that cannot work."""
        positive_ints = ("iterations", "batch", "val_every", "checkpoint_every")
        for name in positive_ints:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ValueError(f"lr must be > 0; got {self.lr!r}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 (or unset); got {self.patience!r}")
        if not (isinstance(self.min_delta, (int, float)) and self.min_delta >= 0):
            raise ValueError(f"min_delta must be >= 0 (e.g. 0.01); got {self.min_delta!r}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise ValueError(f"time_budget must be > 0 seconds; got {self.time_budget!r}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0; got {self.grad_clip!r}")
        if not (isinstance(self.diverge_factor, (int, float)) and self.diverge_factor > 1):
            raise ValueError(f"diverge_factor must be > 1 (e.g. 1000); got {self.diverge_factor!r}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0; got {self.weight_decay!r}")
        if self.cuda_graph and self.device == "cpu":
            raise ValueError("cuda_graph needs a GPU: use --device cuda (or auto) with --cuda-graph")
        if self.cuda_graph and self.lr_schedule != "constant":
            raise ValueError(
                f"cuda_graph bakes the learning rate into the captured step; lr_schedule "
                f"{self.lr_schedule!r} changes it every iteration: use lr_schedule 'constant'"
            )
        for name, valid in (("optimizer", OPTIMIZERS), ("lr_schedule", LR_SCHEDULES), ("device", DEVICES)):
            if getattr(self, name) not in valid:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; valid: {', '.join(valid)}")
