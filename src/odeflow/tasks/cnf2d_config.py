"""The settings of task `cnf` (CNFConfig): plain data, no torch, so the command line builds
its parser from the fields without importing the task (`odeflow.cli.config_cli`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Literal, Optional, Union

from ..training.config import TrainingConfig
from ..training.config_types import PositiveFloat, PositiveInt
from .objective_config import ObjectiveConfig, validate_net_time

if TYPE_CHECKING:  # annotations only: importing it would load torch
    from ..flows import CNF


# The default multilevel stages: 2 rk4 steps with lr 1e-2 (RNODE's simple early dynamics take a
# large rate), 2 steps with lr 1e-3, then 4 steps with lr 5e-4 to the end. Passing a learning rate
# or solver on the command line drops them (see cli/train_cnf.py); in code pass schedule=None.
FAST_STAGES: List[Dict[str, Any]] = [
    dict(until=50, method="rk4", steps=2, lr=1e-2),
    dict(until=150, method="rk4", steps=2, lr=1e-3),
    dict(until=151, method="rk4", steps=4, lr=5e-4),
]


@dataclass
class CNFConfig(TrainingConfig, ObjectiveConfig):
    data: str = "8gaussians"
    # The defaults are odeflow's fast recipe (configs/cnf_fast.toml; docs/cnf.md: test NLL 3.15 on
    # 8gaussians 34-61x sooner than FFJORD's recipe): batch 256, RNODE, three multilevel stages.
    iterations: PositiveInt = 250
    batch: PositiveInt = 256
    lr: PositiveFloat = 1e-2
    val_every: PositiveInt = 50
    schedule: Optional[List[Dict[str, Any]]] = field(default_factory=lambda: [dict(s) for s in FAST_STAGES])
    hidden: List[PositiveInt] = field(default_factory=lambda: [64, 64, 64])
    layer: str = "concatsquash"
    activation: str = "tanh"
    T: PositiveFloat = 0.5
    mode: Literal["disc-opt", "opt-disc"] = "disc-opt"  # 'disc-opt' or 'opt-disc'
    method: str = "rk4"
    step_size: Optional[float] = 0.125  # None: adaptive with rtol/atol (0.125: 4 rk4 steps on [0, 0.5])
    n_steps: Optional[PositiveInt] = None  # instead of step_size: exactly this many steps on [0, T]
    rtol: PositiveFloat = 1e-5
    atol: PositiveFloat = 1e-5
    divergence: Literal["exact", "hutchinson"] = "hutchinson"
    val_size: PositiveInt = 2048
    test_max: Optional[PositiveInt] = None  # test rows (None: val_size)
    val_method: Optional[str] = None  # None: the training solver (flow matching: dopri5 1e-5)
    val_step_size: Optional[PositiveFloat] = None  # with val_method: None = adaptive rtol = atol = 1e-5
    seminorm: bool = False
    controls: PositiveInt = 1  # > 1: weights interpolated between that many control times
    zero_init: bool = True  # last layer zero, f = 0 at the start (RNODE)
    net_time: Literal["t", "reversed"] = "t"  # the net's time input: t, or T - t (reversed: data at net-time T)
    kinetic: float = 0.01  # RNODE lambda_K
    jacobian: float = 0.01  # RNODE lambda_J
    learn_T: bool = False  # TO-FLOW
    T_lr: PositiveFloat = 1e-2
    T_alpha: float = 0.1
    T_eps: PositiveFloat = 0.1
    T_objective: Literal["loss", "nll"] = "loss"  # 'loss' (NLL + RNODE terms) or 'nll' for the T step
    compile: Union[str, bool] = "auto"  # 'on': torch.compile (torch.func divergence); 'auto' stays eager
    max_memory: Optional[PositiveFloat] = None  # GB; None: in use + half of the free RAM / GPU memory
    memory_plan: Literal["auto", "plain", "checkpointed", "adjoint"] = (
        "auto"  # auto, plain, checkpointed or adjoint (flows.memory_plan)
    )

    def validate(self) -> None:
        from ..data.toy2d import TOY_DATASETS
        from ..flows.memory_plan import STRATEGIES
        from ..solvers.compile_policy import compile_choice

        super().validate()
        if self.mode not in ("disc-opt", "opt-disc"):
            raise ValueError(f"unknown mode {self.mode!r}; valid: disc-opt, opt-disc")
        if self.controls < 1:
            raise ValueError(f"controls must be >= 1; got {self.controls}")
        if self.data not in TOY_DATASETS:
            raise ValueError(f"unknown dataset {self.data!r}; valid: {', '.join(sorted(TOY_DATASETS))}")
        if self.val_size < 1:
            raise ValueError(f"val_size must be >= 1; got {self.val_size}")
        compile_choice(self.compile)
        self.validate_objective(self.iterations)
        if self.objective == "flow-matching" and self.learn_T:
            raise ValueError("learn_T (TO-FLOW) trains T by likelihood; drop it with --objective flow-matching")
        validate_net_time(self.net_time, self.learn_T, "--learn-T")
        if self.test_max is not None and self.test_max < 1:
            raise ValueError(f"test_max must be >= 1 (or unset); got {self.test_max!r}")
        if self.max_memory is not None and not self.max_memory > 0:
            raise ValueError(f"max_memory must be > 0 GB (or unset for the default); got {self.max_memory!r}")
        if self.memory_plan not in STRATEGIES:
            raise ValueError(f"unknown memory_plan {self.memory_plan!r}; valid: {', '.join(STRATEGIES)}")

    def step(self):
        from ..training.schedule import make_step

        return make_step(self.step_size, self.n_steps, self.rtol, self.atol)

    def val_solver(self, flow: CNF):
        from ..training.schedule import make_step

        if self.val_method is None:
            if self.objective == "flow-matching":  # the training solver never ran: validate accurately
                from ..solvers.stepping import Adaptive

                return "dopri5", Adaptive(1e-5, 1e-5)
            return flow.method, flow.step
        return self.val_method, make_step(self.val_step_size)
