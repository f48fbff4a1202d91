"""A task written the way docs/design.md tells a newcomer to add one: a config and a Task in one
file. The registry test adds one line for it and trains it through `odeflow train toy-decay`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict

import torch

from odeflow import solve
from odeflow.training import RunContext, StepOutput, Task, TrainingConfig
from odeflow.training.config_types import PositiveFloat, PositiveInt


@dataclass
class ToyDecayConfig(TrainingConfig):
    rate: PositiveFloat = 1.5  # the true decay rate k of y' = -k y
    points: PositiveInt = 8  # observation times on [0, 1]
    iterations: PositiveInt = 60
    lr: PositiveFloat = 0.1


class ToyDecayTask(Task):
    """Fit k in y' = -k y to exp(-rate t) by backprop through rk4."""

    name = "toy-decay"
    config: ToyDecayConfig

    def setup(self, ctx: RunContext) -> None:
        self.model = torch.nn.Linear(1, 1, bias=False).to(ctx.device)
        with torch.no_grad():
            self.model.weight.fill_(-0.2)
        self.t = torch.linspace(0.0, 1.0, self.config.points)
        self.y = torch.exp(-self.config.rate * self.t)[:, None]

    def batch(self, iteration: int, ctx: RunContext) -> Any:
        return None

    def training_loss(self, batch: Any) -> StepOutput:
        pred = solve(lambda t, y: self.model(y), torch.ones(1), self.t, method="rk4").ys
        loss = ((pred - self.y) ** 2).mean()
        return StepOutput(loss, {"loss": loss.detach()})

    def finish(self, ctx: RunContext) -> Dict[str, Any]:
        return {"test_rate": -float(self.model.weight.detach())}
