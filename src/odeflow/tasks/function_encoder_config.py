"""The settings of task `function-encoder` (FunctionEncoderConfig): plain data, no torch, so the command line builds
its parser from the fields without importing the task (`odeflow.cli.config_cli`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Literal

from ..training.config import TrainingConfig
from ..training.config_types import NonNegativeFloat, PositiveFloat, PositiveInt


@dataclass
class FunctionEncoderConfig(TrainingConfig):
    family: Literal["van-der-pol", "damped-oscillator"] = "van-der-pol"
    n_systems: PositiveInt = 24  # training systems (parameters drawn in the family's range)
    trajectories: PositiveInt = 20  # per training system (half for α, half for the loss)
    horizon: PositiveFloat = 3.0
    points: PositiveInt = 61
    n_basis: PositiveInt = 8
    hidden: List[PositiveInt] = field(default_factory=lambda: [32, 32])
    activation: str = "tanh"
    gram_weight: NonNegativeFloat = 1.0  # weight of mean((G - I)^2)
    test_parameters: List[List[float]] = field(default_factory=lambda: [[0.75], [1.25], [1.75], [2.25], [3.0]])
    demos: PositiveInt = 5  # demonstration trajectories per test system
    eval_trajectories: PositiveInt = 10
    iterations: PositiveInt = 800
    batch: PositiveInt = 8  # systems per iteration
    lr: PositiveFloat = 1e-2
    lr_schedule: Literal["constant", "cosine"] = "cosine"
    val_every: PositiveInt = 100

    def validate(self) -> None:
        from ..data.families import get_family, parameter_grid

        super().validate()
        get_family(self.family)
        parameter_grid(self.family, self.test_parameters)
        if (
            self.trajectories < 2
            or self.points < 3
            or self.horizon <= 0
            or self.demos < 1
            or self.eval_trajectories < 1
        ):
            raise ValueError("need trajectories >= 2, points >= 3, horizon > 0, demos >= 1, eval_trajectories >= 1")
        if self.n_basis < 1 or self.gram_weight < 0:
            raise ValueError(f"need n_basis >= 1 and gram_weight >= 0; got {self.n_basis}, {self.gram_weight}")
        if self.batch > self.n_systems:
            raise ValueError(f"batch ({self.batch} systems) exceeds n_systems ({self.n_systems}); lower --batch")
