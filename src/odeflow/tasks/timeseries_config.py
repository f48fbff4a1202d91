"""The settings of task `timeseries` (TimeSeriesConfig): plain data, no torch, so the command line builds
its parser from the fields without importing the task (`odeflow.cli.config_cli`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Literal, Optional, Tuple, Union

from ..training.config import TrainingConfig
from ..training.config_types import PositiveFloat, PositiveInt

if TYPE_CHECKING:  # annotations only: importing it would load torch
    from ..solvers.compile_policy import AutoCompile

MODES: Tuple[Literal["disc-opt"], Literal["opt-disc"]] = ("disc-opt", "opt-disc")


@dataclass
class TimeSeriesConfig(TrainingConfig):
    data: str = "spiral"  # 'spiral' or a CSV path
    time_column: str = "t"
    mode: Literal["disc-opt", "opt-disc"] = (
        "disc-opt"  # 'disc-opt' (rk4 on the data grid) or 'opt-disc' (dopri5 adjoint)
    )
    method: Optional[str] = None  # default rk4 for disc-opt, dopri5 for opt-disc
    step_size: Optional[PositiveFloat] = None  # fixed step; default: the data spacing
    rtol: PositiveFloat = 1e-7
    atol: PositiveFloat = 1e-9
    seminorm: bool = False
    compile: Union[str, bool] = "auto"  # 'auto' | 'on' | 'off': torch.compile (auto: when it pays)
    iterations: PositiveInt = 300
    lr: PositiveFloat = 0.1
    batch: PositiveInt = 1  # one series: the whole series is the batch
    hidden: List[PositiveInt] = field(default_factory=lambda: [50])
    activation: str = "tanh"
    transform: str = "cube"
    dtype: Literal["float32", "float64"] = "float64"
    check_at: List[int] = field(default_factory=lambda: [14, 24])
    snapshot_at: List[int] = field(default_factory=lambda: [0, 25, 100, 300])
    extrapolate_to: float = 6.0
    loss_threshold: PositiveFloat = 0.1

    def validate(self) -> None:
        from ..solvers.compile_policy import compile_choice

        super().validate()
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; valid: {', '.join(MODES)}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"unknown dtype {self.dtype!r}; valid: float32, float64")
        compile_choice(self.compile)

    def solve_compile(self) -> Union[bool, AutoCompile]:
        """What `solve(compile=...)` gets: auto knows the run makes `iterations` gradient solves."""
        from ..solvers.compile_policy import AutoCompile, compile_choice

        choice = compile_choice(self.compile)
        return AutoCompile(expected_calls=self.iterations) if choice == "auto" else choice

    def solver_kwargs(self) -> Dict[str, Any]:
        from ..gradients import DiscretizeOptimize, OptimizeDiscretize
        from ..solvers.stepping import Adaptive, FixedStep

        if self.mode == "disc-opt":
            return dict(
                method=self.method or "rk4",
                step=FixedStep(self.step_size),
                gradient=DiscretizeOptimize(),
                compile=self.solve_compile(),
            )
        step = FixedStep(self.step_size) if self.step_size else Adaptive(self.rtol, self.atol)
        return dict(
            method=self.method or "dopri5",
            step=step,
            gradient=OptimizeDiscretize(seminorm=self.seminorm),
            compile=self.solve_compile(),
        )
