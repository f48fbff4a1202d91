"""The settings of task `tabular` (TabularConfig): plain data, no torch, so the command line builds
its parser from the fields without importing the task (`odeflow.cli.config_cli`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Optional, Tuple

from ..training.config import TrainingConfig
from ..training.config_types import PositiveFloat, PositiveInt
from .objective_config import ObjectiveConfig, validate_net_time

if TYPE_CHECKING:  # annotations only: importing it would load torch
    from ..flows.stacked import StackSpec


MODES = ("disc-opt", "opt-disc")


@dataclass
class TabularConfig(TrainingConfig, ObjectiveConfig):
    data: str = "digits"  # power, gas, hepmass, miniboone, bsds300 (files), digits, breast_cancer (built in), or your own table: PATH.csv, PATH.npy or PATH.parquet (numeric columns; split 80/10/10 with --seed, standardized)
    data_dir: Optional[str] = None  # None: $ODEFLOW_DATA, else ./data
    mode: Literal["disc-opt", "opt-disc"] = "disc-opt"
    # model (seed 000 Table 3)
    blocks: PositiveInt = 1  # flow steps (CNF blocks)
    layers: PositiveInt = 2  # hidden layers per block
    multiplier: PositiveInt = 2  # hidden width = multiplier x dimension
    activation: str = "softplus"
    layer: str = "concatsquash"
    T: PositiveFloat = 1.0  # end time of each block
    train_T: bool = False
    net_time: Literal["t", "reversed"] = "t"  # the net's time input: t, or T - t (reversed: data at net-time T)
    # training solver
    method: str = "rk4"
    step_size: Optional[float] = 0.25  # None: adaptive with rtol/atol
    n_steps: Optional[PositiveInt] = None
    rtol: PositiveFloat = 1e-6
    atol: PositiveFloat = 1e-8
    seminorm: bool = False
    divergence: Literal["exact", "hutchinson"] = "hutchinson"
    noise: Literal["gaussian", "rademacher"] = "gaussian"
    # evaluation
    val_method: str = "rk4"
    val_step_size: Optional[PositiveFloat] = None  # None: the training h / fine_factor (0.05 for adaptive training)
    fine_factor: PositiveInt = 5  # re-discretization: rk4 with h / fine_factor
    val_max: Optional[PositiveInt] = None  # validate on the first N validation rows (None: as many as
    # fit in val_share of the training time between validations,
    # never fewer than min(val_min, the whole validation set))
    val_share: PositiveFloat = 0.1  # share of training time a validation pass may take
    val_min: PositiveInt = 1000  # floor of the automatic count: best.pt is chosen on >= this
    test_max: Optional[PositiveInt] = None  # test on the first N test rows only (None: the whole test set)
    eval_chunk: int = 1024  # the largest chunk; the memory plan may choose fewer rows
    dtype: Literal["float32", "float64"] = "float32"
    # memory (flows.memory_plan)
    max_memory: Optional[PositiveFloat] = None  # GB; None: in use + half of the free RAM / GPU memory
    memory_plan: Literal["auto", "plain", "checkpointed", "adjoint"] = "auto"  # auto, plain, checkpointed or adjoint

    def validate(self) -> None:
        from ..data.tabular import LOADERS
        from ..data.user_table import TABLE_SUFFIXES, is_table_path
        from ..flows.divergence import NOISES
        from ..flows.memory_plan import STRATEGIES
        from ..solvers.methods import METHODS

        super().validate()
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; valid: {', '.join(MODES)}")
        if self.data not in LOADERS and not is_table_path(self.data):
            raise ValueError(
                f"unknown tabular data set {self.data!r}; valid: {', '.join(LOADERS)}, or a table "
                f"of your own: a path ending in {', '.join(TABLE_SUFFIXES)}"
            )
        for name in ("method", "val_method"):
            if getattr(self, name) not in METHODS:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; valid: {', '.join(sorted(METHODS))}")
        if self.divergence not in ("exact", "hutchinson"):
            raise ValueError(f"unknown divergence {self.divergence!r}; valid: exact, hutchinson")
        if self.noise not in NOISES:
            raise ValueError(f"unknown noise {self.noise!r}; valid: {', '.join(NOISES)}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"unknown dtype {self.dtype!r}; valid: float32, float64")
        if not self.step_size and not self.n_steps and METHODS[self.method].b_err is None:
            raise ValueError(
                f"method {self.method} has no error estimate for adaptive steps: give step_size "
                "(or n_steps), or use an embedded method such as dopri5"
            )
        for name in ("fine_factor", "eval_chunk", "val_min"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        if not 0 < self.val_share <= 1:
            raise ValueError(f"val_share must be in (0, 1]; got {self.val_share!r}")
        if self.max_memory is not None and not self.max_memory > 0:
            raise ValueError(f"max_memory must be > 0 GB (or unset for the default); got {self.max_memory!r}")
        if self.memory_plan not in STRATEGIES:
            raise ValueError(f"unknown memory_plan {self.memory_plan!r}; valid: {', '.join(STRATEGIES)}")
        self.validate_objective(self.iterations)
        validate_net_time(self.net_time, self.train_T, "train_T (the config's [model] table)")
        for name in ("val_max", "test_max"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1 (or unset); got {getattr(self, name)}")
        self.spec()

    def spec(self) -> StackSpec:
        import dataclasses

        from ..flows.stacked import StackSpec

        return StackSpec(**{f.name: getattr(self, f.name) for f in dataclasses.fields(StackSpec)})

    def step(self):
        from ..training.schedule import make_step

        return make_step(self.step_size, self.n_steps, self.rtol, self.atol)

    def fine_h(self) -> float:
        if self.step_size:
            return self.step_size / self.fine_factor
        if self.n_steps:
            return self.T / (self.n_steps * self.fine_factor)
        return 0.05

    def val_solver(self) -> Tuple[str, Any]:
        """Validation: `val_method` with h = val_step_size (default the fine h); an embedded
        method without a step size runs adaptively with 1e-6/1e-8."""
        from ..solvers.methods import METHODS
        from ..solvers.stepping import Adaptive, FixedStep

        if METHODS[self.val_method].b_err is not None and self.val_step_size is None:
            return self.val_method, Adaptive(1e-6, 1e-8)
        return self.val_method, FixedStep(self.val_step_size or self.fine_h())
