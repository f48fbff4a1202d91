"""Classifiers of irregular multivariate series (Rubanova et al. 2019 §classification).

ode-rnn:    ODE-RNN encoder (forward in time); logits = W h + b from the state right after
            the series' last observation.
gru-dt, gru-d: the GRU baselines of models.gru_d, same linear head on their final state.
latent-ode: the latent ODE (ODE-RNN encoder run backwards -> q(z0|x)) with a classifier MLP
            on z0; trained on  -ELBO / n_obs + ce_weight * CE(classifier(z0 samples), y)
            (the joint objective of Rubanova et al.); predictions from the posterior mean.
ncde:       neural CDE (Kidger et al. 2020) on a cubic spline of time, values and observation
            counts (models.ncde); linear head on z at the series' last observation.
nrde:       neural rough DE (Morrill et al. 2021): the same channels as a piecewise-linear
            path, one log-ODE step per window of its depth-2 log-signature (models.nrde).
random-cde: an untrained random CDE on the same log-signature windows as a reservoir, pooled
            over several readings, with PPV features of the observed points (models.path_ppv),
            and a ridge readout fitted in closed form (models.random_cde).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from .gru_d import ObservationGRU
from .last_observed import last_observed
from .latent_ode import LatentODE
from .ode_solver import ODESolver, disc_opt
from .odernn import ODERNN

SEQUENCE_MODELS = ("ode-rnn", "latent-ode", "gru-dt", "gru-d", "ncde", "nrde", "random-cde")


class RecurrentClassifier(nn.Module):
    """ODE-RNN or an observation GRU, then a linear head."""

    def __init__(self, core: nn.Module, hidden_dim: int, num_classes: int) -> None:
        super().__init__()
        self.core = core
        self.head = nn.Linear(hidden_dim, num_classes)

    def features(self, times: Tensor, values: Tensor, mask: Tensor, lengths: Optional[Tensor] = None) -> Tensor:
        """The state after each series' last observation [B, H]; times [T] (union grid) or, for the
        ODE-RNN, [B, N] with `lengths` (each series on its own times)."""
        if isinstance(self.core, ODERNN):
            after = self.core(times, values, mask, lengths=lengths).after  # [T, B, H]
            last = last_observed(mask)
            return after[last, torch.arange(after.shape[1], device=after.device)]
        if times.dim() != 1:
            raise ValueError(f"{type(self.core).__name__} runs on the union grid (times [T]); got {tuple(times.shape)}")
        return self.core(times, values, mask)

    def forward(self, times: Tensor, values: Tensor, mask: Tensor, lengths: Optional[Tensor] = None) -> Tensor:
        return self.head(self.features(times, values, mask, lengths))


class LatentODEClassifier(nn.Module):
    """A LatentODE plus an MLP classifier on z0."""

    def __init__(self, latent: LatentODE, num_classes: int, width: int = 64) -> None:
        super().__init__()
        self.latent = latent
        self.classifier = nn.Sequential(nn.Linear(latent.latent_dim, width), nn.ReLU(), nn.Linear(width, num_classes))

    def forward(self, times: Tensor, values: Tensor, mask: Tensor, lengths: Optional[Tensor] = None) -> Tensor:
        """Logits [B, C] from the posterior mean of z0 (times [B, N] with `lengths`: each series on its own times)."""
        mean, _ = self.latent.posterior(times, values, mask, lengths=lengths)
        return self.classifier(mean)


def make_sequence_classifier(
    kind: str,
    input_dim: int,
    num_classes: int,
    hidden: int = 32,
    field_hidden: int = 32,
    latent_dim: int = 16,
    step_size: float = 0.1,
    method: str = "midpoint",
    solver: Optional[ODESolver] = None,
    spline: str = "hermite",
    count_scale: float = 1.0,
    adjoint: bool = False,
    window: float = 0.1,
    origin: float = 0.0,
    windows: int = 16,
    span: float = 1.0,
    reservoir: int = 256,
    shifts: int = 4,
    seed: int = 0,
) -> nn.Module:
    """One of SEQUENCE_MODELS; ODE parts on fixed steps of at most `step_size` (euler encoder,
    `method` latent decoder and neural CDE), or `solver` for the encoder / the CDE when given.
    Neural CDE: `spline` 'hermite' | 'natural', intensity channels times `count_scale`,
    `adjoint` for the continuous adjoint instead of backprop through the steps. Neural RDE:
    windows of length `window` from `origin`, one `method` step per window (or `solver`, in each
    window's unit time), intensity channels times `count_scale`, `adjoint` as above. Random CDE:
    `windows` windows over `span` from `origin` (models.random_cde.default_readings), `reservoir`
    units, `shifts` segment grids, random weights from `seed`."""
    if kind not in SEQUENCE_MODELS:
        raise ValueError(f"unknown sequence model {kind!r}; valid: {', '.join(SEQUENCE_MODELS)}")
    if num_classes < 2:
        raise ValueError(f"a classifier needs >= 2 classes; got {num_classes}")
    if kind == "ncde":
        from ..gradients import DiscretizeOptimize, OptimizeDiscretize
        from ..solvers.stepping import FixedStep
        from .ncde import NeuralCDE

        grad = OptimizeDiscretize() if adjoint else DiscretizeOptimize()
        cde = solver or ODESolver(method, FixedStep(step_size), grad)
        return NeuralCDE(input_dim, hidden, num_classes, field_hidden, spline, count_scale, cde)  # type: ignore[arg-type]
    if kind == "nrde":
        from ..gradients import DiscretizeOptimize, OptimizeDiscretize
        from ..solvers.stepping import FixedStep
        from .nrde import NeuralRDE

        grad = OptimizeDiscretize() if adjoint else DiscretizeOptimize()
        rde = solver or ODESolver(method, FixedStep(1.0), grad)
        return NeuralRDE(input_dim, hidden, num_classes, window, field_hidden, count_scale, origin, rde)
    if kind == "random-cde":
        from .random_cde import RandomCDEClassifier, default_readings

        return RandomCDEClassifier(
            input_dim, num_classes, default_readings(windows), span, origin, reservoir, count_scale, seed, shifts=shifts
        )
    enc = solver or disc_opt("euler", step_size)
    if kind == "ode-rnn":
        from .timeseries import VectorFieldMLP

        field = VectorFieldMLP(hidden, hidden=(field_hidden,), activation="tanh", transform="identity")
        return RecurrentClassifier(ODERNN(input_dim, hidden, field, solver=enc), hidden, num_classes)
    if kind in ("gru-dt", "gru-d"):
        return RecurrentClassifier(ObservationGRU(input_dim, hidden, kind), hidden, num_classes)
    latent = LatentODE(input_dim, latent_dim, hidden, field_hidden, "ode-rnn", False, disc_opt(method, step_size), enc)
    return LatentODEClassifier(latent, num_classes)
