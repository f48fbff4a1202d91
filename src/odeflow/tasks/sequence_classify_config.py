"""The settings of series classification (`odeflow train classify` on series data): plain data, no
torch, so the command line builds its parser from the fields without importing the task."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from ..training.config import TrainingConfig
from ..training.config_types import NonNegativeFloat, PositiveFloat, PositiveInt

SEQUENCE_SETS = ("japanese-vowels", "basic-motions")  # data.uea.UEA_SETS, named here without torch


def is_sequence_data(data: str) -> bool:
    """A series set: japanese-vowels, basic-motions (sktime's UEA files) or a long CSV."""
    return data in SEQUENCE_SETS or data.endswith(".csv")


@dataclass
class SequenceClassifyConfig(TrainingConfig):
    model: Literal["ode-rnn", "latent-ode", "gru-dt", "gru-d"] = "ode-rnn"  # ode-rnn | latent-ode | gru-dt | gru-d
    data: str = "basic-motions"  # japanese-vowels | basic-motions | PATH.csv (with a label column)
    drop: NonNegativeFloat = 0.0  # share of observations removed per series
    drop_mode: Literal["time", "channel"] = "time"  # time | channel
    epochs: Optional[PositiveInt] = None  # if set, iterations = epochs * (training batches per epoch)
    iterations: PositiveInt = 300
    batch: PositiveInt = 16
    lr: PositiveFloat = 1e-2
    lr_schedule: Literal["constant", "cosine"] = "cosine"
    grad_clip: Optional[PositiveFloat] = 10.0
    val_every: PositiveInt = 25
    checkpoint_every: PositiveInt = 50
    val_fraction: PositiveFloat = 0.1  # of the training split, held out for validation
    test_fraction: PositiveFloat = 0.2  # CSV only: series held out for testing
    hidden: PositiveInt = 32  # recurrent state size
    field_hidden: PositiveInt = 32  # width of the ODE fields' hidden layer
    latent_dim: PositiveInt = 16  # latent ODE: size of z
    method: str = "midpoint"  # latent ODE decoder (encoder: euler)
    step_size: float = 0.1  # fixed ODE steps; every gap between grid times also splits
    obs_std: float = 0.1  # latent ODE: observation noise of the ELBO
    samples: int = 3  # latent ODE: z0 samples per series in training
    ce_weight: NonNegativeFloat = 100.0  # latent ODE: weight of the cross-entropy (Rubanova et al.)
    kl_warmup: int = 10
    kl_rate: float = 0.99

    def validate(self) -> None:
        from ..data.drop import DROP_MODES
        from ..data.uea import UEA_SETS
        from ..models.sequence_classifiers import SEQUENCE_MODELS

        super().validate()
        if self.model not in SEQUENCE_MODELS:
            raise ValueError(f"unknown sequence model {self.model!r}; valid: {', '.join(SEQUENCE_MODELS)}")
        if not is_sequence_data(self.data):
            raise ValueError(
                f"unknown sequence data {self.data!r}; valid: {', '.join(tuple(UEA_SETS))} or a "
                f"long CSV path ending in .csv (series,time,variable,value,label)"
            )
        if not 0 <= self.drop < 1:
            raise ValueError(f"drop must be in [0, 1) (e.g. 0.3, 0.5, 0.7); got {self.drop}")
        if self.drop_mode not in DROP_MODES:
            raise ValueError(f"unknown drop_mode {self.drop_mode!r}; valid: {', '.join(DROP_MODES)}")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs must be >= 1 (or unset to use iterations); got {self.epochs}")
        for name in ("val_fraction", "test_fraction"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} must be in (0, 1); got {getattr(self, name)}")
        if min(self.hidden, self.field_hidden, self.latent_dim, self.samples) < 1:
            raise ValueError("hidden, field_hidden, latent_dim and samples must be >= 1")
        if self.step_size <= 0 or self.obs_std <= 0 or self.ce_weight < 0:
            raise ValueError("step_size and obs_std must be > 0, ce_weight >= 0")
