"""The settings of task `hamiltonian` (HamiltonianConfig): plain data, no torch, so the command line builds
its parser from the fields without importing the task (`odeflow.cli.config_cli`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Literal, Optional

from ..training.config import TrainingConfig
from ..training.config_types import NonNegativeFloat, PositiveFloat, PositiveInt

MODELS = ("hnn", "hnn-separable", "node")
INTEGRATORS = ("rk4", "dopri5", "leapfrog")


@dataclass
class HamiltonianConfig(TrainingConfig):
    system: Literal["pendulum", "mass-spring"] = "pendulum"
    model: Literal["hnn", "hnn-separable", "node"] = (
        "hnn"  # 'hnn', 'hnn-separable' (H = T(p) + V(q)) or 'node' (plain neural ODE)
    )
    hidden: List[PositiveInt] = field(default_factory=lambda: [64, 64])
    activation: str = "tanh"
    n_train: PositiveInt = 25  # training trajectories
    n_val: int = field(default=5, metadata={"cli": False})  # validation trajectories (config files only)
    n_test: PositiveInt = 20
    horizon: PositiveFloat = 3.0  # training trajectory length
    points: PositiveInt = 61  # samples per trajectory on [0, horizon]
    noise: NonNegativeFloat = 0.0
    integrator: Optional[Literal["rk4", "dopri5", "leapfrog"]] = (
        None  # rollouts: default leapfrog for hnn-separable, rk4 otherwise
    )
    step_size: PositiveFloat = 0.1
    rollout_factor: PositiveFloat = 100.0  # rollout length / training horizon
    iterations: PositiveInt = 1500
    batch: PositiveInt = 500
    lr: PositiveFloat = 1e-2
    lr_schedule: Literal["constant", "cosine"] = "cosine"
    val_every: PositiveInt = 100

    def validate(self) -> None:
        from ..data.hamiltonian_systems import get_hamiltonian_system

        super().validate()
        get_hamiltonian_system(self.system)
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; valid: {', '.join(MODELS)}")
        if self.integrator is not None and self.integrator not in INTEGRATORS:
            raise ValueError(f"unknown integrator {self.integrator!r}; valid: {', '.join(INTEGRATORS)}")
        if self.rollout_integrator() == "leapfrog" and self.model != "hnn-separable":
            raise ValueError("leapfrog needs a separable H: use --model hnn-separable or another integrator")
        if self.points < 2 or self.horizon <= 0 or self.n_train < 1 or self.n_test < 1 or self.n_val < 1:
            raise ValueError("need points >= 2, horizon > 0 and at least one train/val/test trajectory")
        if self.step_size <= 0 or self.rollout_factor < 1 or self.noise < 0:
            raise ValueError(
                f"need step_size > 0, rollout_factor >= 1, noise >= 0; got {self.step_size}, "
                f"{self.rollout_factor}, {self.noise}"
            )

    def rollout_integrator(self) -> str:
        return self.integrator or ("leapfrog" if self.model == "hnn-separable" else "rk4")
