"""The settings of task `classify` (ClassifyConfig): plain data, no torch, so the command line builds
its parser from the fields without importing the task (`odeflow.cli.config_cli`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Literal, Optional

from ..training.config import TrainingConfig
from ..training.config_types import NonNegativeFloat, PositiveFloat, PositiveInt

# Sets of a few thousand samples: small batches converge in a few epochs (measured in docs/classify.md:
# digits 79 % -> 97 % and mnist5k 40 % -> 94 % in 5 epochs against batch 128); larger sets: 128.
SMALL_SET_BATCH = {"digits": 8, "annuli": 8, "mnist5k": 16}


@dataclass
class ClassifyConfig(TrainingConfig):
    model: str = "odenet"  # odenet | resnet | anode | sonode
    data: str = "digits"  # annuli | digits | mnist5k | mnist | fashion-mnist | cifar10; series: gunpoint, uea:NAME, ..., PATH.csv
    data_dir: Optional[str] = None  # folder with the standard files (mnist, fashion-mnist, cifar10)
    epochs: Optional[PositiveInt] = None  # if set, iterations = epochs * (training batches per epoch)
    batch: Optional[PositiveInt] = None  # type: ignore[assignment]  # None: 8 (digits, annuli), 16 (mnist5k), else 128
    lr: PositiveFloat = 3e-3
    lr_schedule: Literal["constant", "cosine"] = (
        "cosine"  # with the small batch: >= 95 % on digits in 5 epochs (docs/classify.md)
    )
    val_every: PositiveInt = 50
    val_fraction: PositiveFloat = 0.1  # of the training split, held out for validation
    channels: PositiveInt = 32  # images: feature-map channels of the block
    downsample: Optional[int] = None  # images: stride-2 convs in the stem (None: 1 up to 16 px, else 2)
    hidden: List[PositiveInt] = field(default_factory=lambda: [32, 32])  # vectors: hidden widths of the field
    activation: str = "tanh"  # vectors: field activation
    augment: Optional[int] = None  # anode: extra zero channels/dims (None: 8 for images, 1 for vectors)
    T: PositiveFloat = 1.0  # end time of the block
    mode: Literal["disc-opt", "opt-disc"] = "disc-opt"  # disc-opt | opt-disc (continuous adjoint)
    method: str = "rk4"
    n_steps: Optional[int] = 4  # fixed steps on [0, T]; also the ResNet's number of blocks
    step_size: Optional[float] = None  # instead of n_steps; both None: adaptive with rtol/atol
    rtol: PositiveFloat = 1e-3
    atol: PositiveFloat = 1e-4
    kinetic: NonNegativeFloat = 0.0  # RNODE lambda_K

    def __post_init__(self) -> None:
        if self.batch is None:
            self.batch = SMALL_SET_BATCH.get(self.data, 128)

    @property
    def batch_size(self) -> int:
        """The batch, resolved (``batch`` None picks it by data set when the config is made)."""
        return self.batch if self.batch is not None else SMALL_SET_BATCH.get(self.data, 128)

    def validate(self) -> None:
        from ..data.classification import DATASETS
        from ..models.classifiers import KINDS

        super().validate()
        if self.model not in KINDS:
            raise ValueError(f"unknown model {self.model!r}; valid: {', '.join(KINDS)}")
        if self.data not in DATASETS:
            raise ValueError(f"unknown data {self.data!r}; valid: {', '.join(DATASETS)}")
        if self.mode not in ("disc-opt", "opt-disc"):
            raise ValueError(f"unknown mode {self.mode!r}; valid: disc-opt, opt-disc")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs must be >= 1 (or unset to use iterations); got {self.epochs}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1); got {self.val_fraction}")
        if self.kinetic < 0:
            raise ValueError(f"kinetic (lambda_K) must be >= 0; got {self.kinetic}")
        if self.model == "resnet" and self.resnet_blocks() is None:
            raise ValueError("the ResNet twin needs a fixed grid: give n_steps (its number of blocks) or step_size")

    def step(self):
        from ..training.schedule import make_step

        return make_step(self.step_size, self.n_steps, self.rtol, self.atol)

    def resnet_blocks(self) -> Optional[int]:
        import math

        if self.n_steps:
            return self.n_steps
        return max(1, math.ceil(self.T / self.step_size)) if self.step_size else None
