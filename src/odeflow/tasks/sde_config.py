"""The settings of task `sde` (SDEConfig): plain data, no torch, so the command line builds
its parser from the fields without importing the task (`odeflow.cli.config_cli`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Literal

from ..training.config import TrainingConfig
from ..training.config_types import PositiveFloat, PositiveInt


@dataclass
class SDEConfig(TrainingConfig):
    system: Literal["ornstein-uhlenbeck", "double-well"] = "ornstein-uhlenbeck"
    n_paths: PositiveInt = 256  # training paths
    horizon: PositiveFloat = 3.0
    points: PositiveInt = 21  # observation times per path
    hidden: List[PositiveInt] = field(default_factory=lambda: [32, 32])
    activation: str = "tanh"
    dt: PositiveFloat = 0.05  # SDE solver step
    method: Literal["euler", "milstein", "srk"] = "euler"
    adjoint: bool = False  # torchsde's adjoint (memory independent of steps)
    iterations: PositiveInt = 300
    batch: PositiveInt = 128  # model paths per iteration (all ranks together)
    lr: PositiveFloat = 1e-2
    lr_schedule: Literal["constant", "cosine"] = "cosine"
    val_every: PositiveInt = 50

    def validate(self) -> None:
        from ..data.stochastic import SDE_SYSTEMS
        from ..models.sde import SDE_METHODS

        super().validate()
        if self.system not in SDE_SYSTEMS:
            raise ValueError(f"unknown SDE system {self.system!r}; valid: {', '.join(sorted(SDE_SYSTEMS))}")
        if self.method not in SDE_METHODS:
            raise ValueError(f"unknown SDE method {self.method!r}; valid: {', '.join(SDE_METHODS)}")
        if self.n_paths < 2 or self.points < 2 or self.horizon <= 0 or not self.dt > 0:
            raise ValueError("need n_paths >= 2, points >= 2, horizon > 0 and dt > 0")
