"""The settings of series classification (`odeflow train classify` on series data): plain data, no
torch, so the command line builds its parser from the fields without importing the task."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import List, Literal, Optional

from ..training.config import TrainingConfig
from ..training.config_types import NonNegativeFloat, PositiveFloat, PositiveInt
from .series_sets import is_uea_name, uea_short_name, valid_uea_names

# The iteration budget when neither iterations nor epochs is given ("auto"):
#   clamp(BUDGET_EPOCHS * training batches per epoch, BUDGET_MIN, BUDGET_MAX)
# and training stops earlier on a validation plateau (`patience` validations without a lower
# validation loss).
BUDGET_EPOCHS, BUDGET_MIN, BUDGET_MAX = 200, 1500, 5000


def is_sequence_data(data: str) -> bool:
    """A series set: a bundled UEA/UCR set (short name or uea:NAME) or a long CSV."""
    return is_uea_name(data) or data.endswith(".csv")


def auto_iterations(batches_per_epoch: int) -> int:
    """The default iteration budget for a training split of ``batches_per_epoch`` batches."""
    return int(min(BUDGET_MAX, max(BUDGET_MIN, BUDGET_EPOCHS * batches_per_epoch)))


@dataclass
class SequenceClassifyConfig(TrainingConfig):
    # random-cde (the default) is fitted in closed form; the others are trained by iterations
    model: Literal["ode-rnn", "latent-ode", "gru-dt", "gru-d", "ncde", "nrde", "random-cde"] = (
        "random-cde"  # random-cde | ode-rnn | latent-ode | gru-dt | gru-d | ncde | nrde
    )
    data: str = "basic-motions"  # a bundled set (gunpoint, uea:GunPoint, ...) | PATH.csv (with a label column)
    drop: NonNegativeFloat = 0.0  # share of observations removed per series
    drop_mode: Literal["time", "channel"] = "time"  # time | channel
    # series: each series' channels z-normalised on their own first (the UCR convention)
    normalize: Literal["channel", "series"] = "channel"  # channel (training statistics) | series (each series first)
    epochs: Optional[PositiveInt] = None  # if set, iterations = epochs * (training batches per epoch)
    # unset: the budget scales with the data (auto_iterations); training stops earlier on a plateau
    iterations: Optional[PositiveInt] = None  # type: ignore[assignment]
    patience: Optional[PositiveInt] = 10  # stop after this many validations without a lower val_loss
    min_delta: NonNegativeFloat = 0.01  # ... lower by more than this (nats of cross-entropy)
    # a minibatch cross-entropy near 0 (memorised) makes an ordinary one look 1000x worse; a
    # non-finite loss or gradient still stops the run
    diverge_factor: PositiveFloat = 1e12
    batch: PositiveInt = 16
    lr: PositiveFloat = 1e-2
    lr_schedule: Literal["constant", "cosine"] = "cosine"
    grad_clip: Optional[PositiveFloat] = 10.0
    val_every: PositiveInt = 25
    checkpoint_every: PositiveInt = 50
    val_fraction: PositiveFloat = 0.2  # of the training split, held out for validation (stratified)
    test_fraction: PositiveFloat = 0.2  # CSV only: series held out for testing
    hidden: PositiveInt = 32  # recurrent state size
    field_hidden: PositiveInt = 32  # width of the ODE fields' hidden layer
    latent_dim: PositiveInt = 16  # latent ODE: size of z
    method: str = "midpoint"  # latent ODE decoder and neural CDE (ODE-RNN encoders: euler)
    step_size: float = 0.1  # fixed ODE steps; every gap between grid times also splits
    ode_rtol: Optional[PositiveFloat] = None  # ode-rnn / latent-ode: adaptive dopri5 at this rtol (atol rtol/10)
    per_sample: bool = False  # with --ode-rtol: each series on its own times and steps (no union grid)
    spline: Literal["hermite", "natural"] = "hermite"  # neural CDE control: hermite (backward differences) | natural
    mode: Literal["disc-opt", "opt-disc"] = (
        "disc-opt"  # ncde / nrde gradients: disc-opt (backprop) | opt-disc (adjoint)
    )
    # unset: about 4 sqrt(points of the longest training series)
    windows: Optional[PositiveInt] = None  # nrde, random-cde: log-signature windows over the longest training span
    reservoir: PositiveInt = 256  # random-cde: units of the random CDE state (fewer for many channels)
    shifts: PositiveInt = 4  # random-cde: segment grids per local reading (overlapping segments)
    obs_std: float = 0.1  # latent ODE: observation noise of the ELBO
    samples: int = 3  # latent ODE: z0 samples per series in training
    ce_weight: NonNegativeFloat = 100.0  # latent ODE: weight of the cross-entropy (Rubanova et al.)
    kl_warmup: int = 10
    kl_rate: float = 0.99

    def validate(self) -> None:
        from ..data.drop import DROP_MODES
        from ..models.sequence_classifiers import SEQUENCE_MODELS

        if self.iterations is None:  # the engine's checks, with the budget still to be set
            TrainingConfig.validate(dataclasses.replace(self, iterations=1))
        else:
            super().validate()
        if self.model not in SEQUENCE_MODELS:
            raise ValueError(f"unknown sequence model {self.model!r}; valid: {', '.join(SEQUENCE_MODELS)}")
        if not is_sequence_data(self.data) or (is_uea_name(self.data) and uea_short_name(self.data) is None):
            raise ValueError(
                f"unknown sequence data {self.data!r}; valid: a set bundled with sktime ({valid_uea_names()}) "
                f"or a long CSV path ending in .csv (series,time,variable,value,label)"
            )

        if not 0 <= self.drop < 1:
            raise ValueError(f"drop must be in [0, 1) (e.g. 0.3, 0.5, 0.7); got {self.drop}")
        if self.spline not in ("hermite", "natural"):
            raise ValueError(f"unknown spline {self.spline!r}; valid: hermite, natural")
        if self.mode not in ("disc-opt", "opt-disc"):
            raise ValueError(f"unknown mode {self.mode!r}; valid: disc-opt (backprop), opt-disc (adjoint)")
        if self.mode == "opt-disc" and self.model not in ("ncde", "nrde"):
            raise ValueError(
                f"mode opt-disc (the adjoint) is offered for the neural CDE and RDE only; use --model ncde or nrde, "
                f"or drop --mode (got --model {self.model})"
            )
        if self.windows is not None and self.model not in ("nrde", "random-cde"):
            raise ValueError(
                f"windows applies to --model nrde or random-cde (log-signature windows); got --model {self.model}"
            )
        if self.model == "random-cde":
            self._check_closed_form()
        else:
            unused = [name for name in RANDOM_CDE_ONLY if getattr(self, name) != _DEFAULTS[name]]
            if unused:
                raise ValueError(
                    f"{_flags(unused)} {_verb(unused, 'applies', 'apply')} to --model random-cde only (the random CDE's reservoir); "
                    f"drop them for --model {self.model}"
                )
        if self.normalize not in ("channel", "series"):
            raise ValueError(f"unknown normalize {self.normalize!r}; valid: channel, series")
        if self.drop_mode not in DROP_MODES:
            raise ValueError(f"unknown drop_mode {self.drop_mode!r}; valid: {', '.join(DROP_MODES)}")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs must be >= 1 (or unset to use iterations); got {self.epochs}")
        for name in ("val_fraction", "test_fraction"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} must be in (0, 1); got {getattr(self, name)}")
        if min(self.hidden, self.field_hidden, self.latent_dim, self.samples) < 1:
            raise ValueError("hidden, field_hidden, latent_dim and samples must be >= 1")
        if (self.ode_rtol is not None or self.per_sample) and self.model not in ("ode-rnn", "latent-ode"):
            raise ValueError(
                f"ode_rtol and per_sample apply to --model ode-rnn or latent-ode; got --model {self.model}"
            )
        if self.per_sample and self.ode_rtol is None:
            raise ValueError("per_sample solves each series on its own adaptive steps: give ode_rtol too (e.g. 1e-3)")
        if self.step_size <= 0 or self.obs_std <= 0 or self.ce_weight < 0:
            raise ValueError("step_size and obs_std must be > 0, ce_weight >= 0")

    def _check_closed_form(self) -> None:
        """random-cde (the default series model) is fitted in closed form: the settings of training by
        iterations (and of the trained models) would do nothing, so changing one is an error."""
        if self.iterations is not None or self.epochs is not None:
            raise ValueError(
                "random-cde (the default series model) is not trained by iterations: its random CDE is fixed and "
                "its ridge readout is fitted in closed form; drop --iterations / --epochs, or pass --model ode-rnn "
                "(or latent-ode, gru-dt, gru-d, ncde, nrde) to train by iterations"
            )
        unused = [
            f.name
            for f in dataclasses.fields(self)
            if f.name not in CLOSED_FORM_SETTINGS and getattr(self, f.name) != _DEFAULTS[f.name]
        ]
        if unused:
            raise ValueError(
                f"{_flags(unused)} {_verb(unused, 'does', 'do')} not apply to random-cde (the default series model: a fixed random CDE and a "
                f"ridge readout fitted in closed form, no iterations); drop them, or pass --model ode-rnn (or "
                f"latent-ode, gru-dt, gru-d, ncde, nrde) to train a model that uses them"
            )


# what random-cde uses; every other setting belongs to the trained models or the training loop
CLOSED_FORM_SETTINGS = frozenset(
    ("model", "data", "drop", "drop_mode", "normalize", "val_fraction", "test_fraction", "seed")
    + ("windows", "reservoir", "shifts", "iterations", "epochs")
)
RANDOM_CDE_ONLY = ("reservoir", "shifts")


def _flags(names: List[str]) -> str:
    return ", ".join("--" + n.replace("_", "-") for n in names)


def _verb(names: List[str], one: str, many: str) -> str:
    return one if len(names) == 1 else many


_DEFAULTS = {f.name: getattr(SequenceClassifyConfig, f.name) for f in dataclasses.fields(SequenceClassifyConfig)}
