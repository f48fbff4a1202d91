"""The settings of task `image` (ImageConfig): plain data, no torch, so the command line builds
its parser from the fields without importing the task (`odeflow.cli.config_cli`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Literal, Optional, Tuple

from ..training.config import TrainingConfig
from ..training.config_types import PositiveFloat, PositiveInt
from .objective_config import ObjectiveConfig, validate_net_time


@dataclass
class ImageConfig(TrainingConfig, ObjectiveConfig):
    data: Literal["digits", "mnist", "fashion-mnist", "cifar10"] = "digits"
    data_dir: Optional[str] = (
        None  # folder with mnist/, fashion-mnist/, cifar-10-batches-py/ (or torchvision's MNIST/raw/, FashionMNIST/raw/); not needed for digits
    )
    batch: PositiveInt = 200
    hidden: List[PositiveInt] = field(default_factory=lambda: [64, 64, 64])
    activation: str = "softplus"
    blocks: PositiveInt = 1  # CNF blocks before and after each squeeze
    scales: Optional[PositiveInt] = (
        None  # None: FFJORD's rule (digits 2, MNIST 3, CIFAR-10 4); 1 with --objective flow-matching
    )
    pieces: PositiveInt = 1  # weights piecewise constant in time (RNODE: 10 MNIST, 14 CIFAR-10)
    alpha: float = 1e-6  # logit transform
    T: PositiveFloat = 1.0  # end time of every block (initial value with --learn-T)
    mode: Literal["disc-opt", "opt-disc"] = "disc-opt"  # 'disc-opt' or 'opt-disc' (continuous adjoint)
    method: str = "rk4"
    step_size: Optional[float] = 0.25  # None: adaptive with rtol/atol
    n_steps: Optional[PositiveInt] = None  # instead of step_size: exactly this many steps on [0, T]
    rtol: PositiveFloat = 1e-5
    atol: PositiveFloat = 1e-5
    zero_init: bool = True  # f = 0 at the start (RNODE)
    net_time: Literal["t", "reversed"] = "t"  # the net's time input: t, or T - t (reversed: data at net-time T)
    kinetic: float = 0.0  # RNODE lambda_K
    jacobian: float = 0.0  # RNODE lambda_J
    learn_T: bool = False  # TO-FLOW: every block's end time learnable
    T_lr: PositiveFloat = 1e-2
    T_alpha: float = 0.1  # temporal regularization alpha |T|
    T_eps: PositiveFloat = 0.1  # clip T to [eps, 2 T0 - eps]
    val_method: str = "dopri5"  # validation/test solver
    val_step_size: Optional[PositiveFloat] = None  # None: adaptive with val_rtol/val_atol
    val_rtol: float = 1e-5
    val_atol: float = 1e-5
    val_size: Optional[PositiveInt] = 1000  # validation images used (None: all)
    eval_batch: PositiveInt = 500  # images per evaluation chunk at most (the memory plan may take fewer)
    samples: PositiveInt = 64  # images in each sample grid
    test_max: Optional[PositiveInt] = None  # test on the first N test images only (None: the whole test set)
    eval_divergence: Literal["exact", "hutchinson"] = (
        "hutchinson"  # test evaluation trace: hutchinson (unbiased, with a standard error) or exact (D VJPs per step)
    )
    max_memory: Optional[PositiveFloat] = None  # GB; None: in use + half of the free RAM / GPU memory
    memory_plan: Literal["auto", "plain", "checkpointed", "adjoint"] = (
        "auto"  # auto, plain, checkpointed or adjoint (flows.memory_plan)
    )

    def validate(self) -> None:
        from ..data.images import IMAGE_DATASETS
        from ..flows.memory_plan import STRATEGIES

        super().validate()
        if self.max_memory is not None and not self.max_memory > 0:
            raise ValueError(f"max_memory must be > 0 GB (or unset for the default); got {self.max_memory!r}")
        if self.memory_plan not in STRATEGIES:
            raise ValueError(f"unknown memory_plan {self.memory_plan!r}; valid: {', '.join(STRATEGIES)}")
        if self.data not in IMAGE_DATASETS:
            raise ValueError(f"unknown image data set {self.data!r}; valid: {', '.join(IMAGE_DATASETS)}")
        if self.mode not in ("disc-opt", "opt-disc"):
            raise ValueError(f"unknown mode {self.mode!r}; valid: disc-opt, opt-disc")
        if self.learn_T and self.step_size is not None and self.n_steps is None:
            raise ValueError(
                "learn_T with a fixed step size changes the cost as T moves; give n_steps instead "
                "of step_size (e.g. n_steps = 4 for rk4 h = 0.25 on T = 1)"
            )
        for name in ("pieces", "blocks", "eval_batch", "samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        if self.val_size is not None and self.val_size < 1:
            raise ValueError(f"val_size must be >= 1 (or unset for all); got {self.val_size}")
        if self.test_max is not None and self.test_max < 1:
            raise ValueError(f"test_max must be >= 1 (or unset for the whole test set); got {self.test_max!r}")
        self.validate_objective(self.iterations)
        validate_net_time(self.net_time, self.learn_T, "--learn-T")
        if self.objective == "flow-matching":
            if self.learn_T:
                raise ValueError("learn_T (TO-FLOW) trains T by likelihood; drop it with --objective flow-matching")
            if self.scale_count() != 1:
                raise ValueError(
                    f"flow matching trains the single-scale image CNF; scales = {self.scales} factors dimensions "
                    "out between scales (no single data-to-noise path to regress on): use --scales 1"
                )

    def scale_count(self) -> Optional[int]:
        """The scales the model is built with: `scales`, or 1 under flow matching, or None (FFJORD's rule)."""
        if self.scales is None and self.objective == "flow-matching":
            return 1
        return self.scales

    def step(self):
        from ..training.schedule import make_step

        return make_step(self.step_size, self.n_steps, self.rtol, self.atol)

    def val_solver(self) -> Tuple[str, Any]:
        from ..training.schedule import make_step

        return self.val_method, make_step(self.val_step_size, None, self.val_rtol, self.val_atol)
