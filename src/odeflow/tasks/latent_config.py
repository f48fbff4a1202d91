"""The settings of task `latent` (LatentSettings: data and model; LatentConfig: with the engine): plain data, no torch, so the command line builds
its parser from the fields without importing the task (`odeflow.cli.config_cli`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from ..training.config import TrainingConfig
from ..training.config_types import Fraction, PositiveFloat, PositiveInt

MODELS = ("latent-ode", "ode-rnn", "rnn-dt")
BUILTIN_DATA = ("periodic", "physionet", "co2")
TASKS = ("interpolation", "extrapolation")
MODES = ("disc-opt", "opt-disc")


@dataclass
class LatentSettings:
    """Everything that defines the latent task's data and model (CLI flags map onto these)."""

    model: Literal["latent-ode", "ode-rnn", "rnn-dt"] = "latent-ode"
    data: str = "periodic"  # periodic | physionet | co2 | PATH.csv
    task_kind: Literal["interpolation", "extrapolation"] = "interpolation"  # interpolation | extrapolation (CLI --task)
    fraction: Fraction = 0.5  # share of points the encoder sees
    t_split: Optional[float] = None  # extrapolation boundary (default: middle of the time span)
    data_dir: str = "data/physionet"  # PhysioNet files
    quantization: PositiveFloat = 0.1  # PhysioNet time bins (hours)
    max_records: Optional[PositiveInt] = None
    n_train: PositiveInt = 1000  # periodic toy sizes
    n_test: PositiveInt = 100  # periodic toy: test series
    n_points: PositiveInt = 100  # periodic toy: points per series
    noise: float = 0.01  # periodic toy: noise std
    time_scale: Optional[PositiveFloat] = None  # multiply times (default: 1, PhysioNet 1/48, CSV 1/span)
    latent_dim: PositiveInt = 6
    hidden: PositiveInt = 20  # recurrent hidden size (all models)
    field_hidden: PositiveInt = 50  # width of the ODE nets
    encoder: Literal["ode-rnn", "rnn"] = "ode-rnn"  # latent ODE encoder: ode-rnn | rnn
    poisson: bool = False  # model observation times by a Poisson process
    obs_std: PositiveFloat = 0.01  # std of the Gaussian likelihood
    samples: PositiveInt = 3  # z0 samples per series in training
    eval_samples: PositiveInt = 10
    iwae: bool = False  # importance-weighted bound instead of the ELBO
    kl_warmup: int = 10  # iterations with KL weight 0
    kl_rate: float = 0.99  # KL weight 1 - rate^(i - warmup)
    mode: Literal["disc-opt", "opt-disc"] = "disc-opt"
    method: str = "midpoint"  # Disc-Opt decoder method (encoder: euler)
    step_size: PositiveFloat = 0.1  # Disc-Opt fixed steps (and Opt-Disc encoder steps)
    rtol: PositiveFloat = 1e-3
    atol: PositiveFloat = 1e-4
    # every ODE dopri5 at rtol/atol per series (the adjoint with seminorms in opt-disc mode)
    per_sample: bool = False  # each series on its own times and adaptive steps (no union grid of a batch)
    test_fraction: Fraction = 0.2  # share of records held out (CSV, PhysioNet)

    def check(self) -> None:
        for name, value, valid in (
            ("model", self.model, MODELS),
            ("task", self.task_kind, TASKS),
            ("mode", self.mode, MODES),
            ("encoder", self.encoder, ("ode-rnn", "rnn")),
        ):
            if value not in valid:
                raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")
        if self.data not in BUILTIN_DATA and not self.data.endswith(".csv"):
            raise ValueError(f"unknown data {self.data!r}; valid: {', '.join(BUILTIN_DATA)} or a path ending in .csv")
        if not 0 < self.fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1]; got {self.fraction}")
        if self.samples < 1 or self.eval_samples < 1 or self.obs_std <= 0 or self.step_size <= 0:
            raise ValueError("samples and eval_samples must be >= 1, obs_std and step_size > 0")
        if self.poisson and self.model != "latent-ode":
            raise ValueError("--poisson applies to --model latent-ode only")


@dataclass
class LatentConfig(TrainingConfig, LatentSettings):
    iterations: PositiveInt = 500
    batch: PositiveInt = 16
    lr: PositiveFloat = 1e-2
    val_every: PositiveInt = 50
    checkpoint_every: PositiveInt = 50
    grad_clip: Optional[PositiveFloat] = 10.0
    val_size: PositiveInt = 100  # training series held out for validation

    def validate(self) -> None:
        super().validate()
        self.check()
        if self.val_size < 1:
            raise ValueError(f"val_size must be >= 1; got {self.val_size}")
