"""What a task hands to the Trainer (the engine knows no task; a task knows no loop).

A task is one file in ``odeflow/tasks/``: it builds the model and the data from its config,
says how to compute the training loss of one batch, how to validate, and what to report and
draw at the end. The Trainer owns everything else: the loop, the optimizers (theta and any
auxiliary step such as TO-FLOW's end time), LR/multilevel schedules, validation cadence,
early stopping, checkpoints and exact resume, metrics.csv/TensorBoard, progress, and
torch.distributed (DDP under torchrun).

Life cycle (all ranks):
    setup(ctx) -> [enter_stage(stage)] -> for each iteration i:
        batch(i, ctx) -> training_loss(batch) (inside DDP's forward) -> backward -> theta step
        -> auxiliary steps -> every val_every: validate(ctx)
    -> finish(ctx) on rank 0 only (test metrics with keys such as test_nll, figures).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Optional

from torch import Tensor, nn

from .config import TrainingConfig
from .context import RunContext
from .schedule import Stage


@dataclass
class StepOutput:
    """The result of one training loss evaluation on this rank's shard.

    loss: scalar to back-propagate (a mean over the local shard: DDP averages over ranks).
    metrics: per-iteration values to log (tensors are converted after the step, all at once,
        and averaged over ranks); e.g. nll, kinetic, nfe_forward.
    extra: anything the auxiliary steps need (e.g. TO-FLOW's end state z_T), not logged.
    """

    loss: Tensor
    metrics: Dict[str, Any] = field(default_factory=dict)
    extra: Dict[str, Any] = field(default_factory=dict)


class AuxiliaryStep:
    """A second optimizer the Trainer runs after each theta step (e.g. TO-FLOW's T update).

    ``step(out, ctx)`` gets the StepOutput of the iteration; the returned dict is logged.
    ``state_dict``/``load_state_dict`` make it resumable (plain data and tensors only).
    ``evaluation()`` is entered around validation and the final evaluation (e.g. an EMA swaps
    its averaged weights in)."""

    def step(self, out: StepOutput, ctx: RunContext) -> Dict[str, float]:
        raise NotImplementedError

    def evaluation(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def state_dict(self) -> Dict[str, Any]:
        return {}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        pass


class Task:
    """Base class of every task; override what the task needs.

    Attributes set by ``setup``: ``model`` (the nn.Module whose state_dict is the checkpoint's
    ``model`` entry). Class attributes: ``name`` (the checkpoint's ``kind``), ``monitor``
    (validation metric that picks best.pt and drives early stopping; lower is better unless
    ``monitor_mode = 'max'``).
    """

    name: str = "task"
    monitor: str = "val_loss"
    monitor_mode: str = "min"
    shards_batch: bool = True  # False: every rank computes the whole batch (e.g. one time series)

    def __init__(self, config: TrainingConfig) -> None:
        config.validate()
        self.config = config
        self.model: nn.Module = nn.Module()

    # --- building ---------------------------------------------------------------------------
    def setup(self, ctx: RunContext) -> None:
        """Build ``self.model`` (on ctx.device) and the data. Seed with ``ctx.seed`` first."""
        raise NotImplementedError

    def parameters(self) -> Iterable[nn.Parameter]:
        """Parameters of the theta optimizer (default: all of the model's that need a gradient)."""
        return [p for p in self.model.parameters() if p.requires_grad]

    def auxiliary_steps(self, ctx: RunContext) -> Dict[str, AuxiliaryStep]:
        """Further optimizers run after the theta step, by name (e.g. {'T': EndTimeStep})."""
        return {}

    # --- one iteration ------------------------------------------------------------------------
    def enter_stage(self, stage: Stage) -> None:
        """Multilevel training: switch to the stage's solver (the Trainer sets its lr)."""

    def before_iteration(self, iteration: int, ctx: RunContext) -> None:
        """Called before each iteration, outside the timed step (e.g. diagnostics)."""

    def batch(self, iteration: int, ctx: RunContext) -> Any:
        """This rank's shard of the global batch of ``iteration``; a pure function of the
        iteration and the seed (see training.data), so that a resumed run draws the same."""
        raise NotImplementedError

    def training_loss(self, batch: Any) -> StepOutput:
        """Loss of one batch with ``self.model``; runs inside DistributedDataParallel.forward."""
        raise NotImplementedError

    def compiles(self) -> bool:
        """Whether the training loss's solves run compiled (asked after each backward pass); the
        Trainer then compiles the optimizer update too. Default: False."""
        return False

    def cuda_graph_problem(self) -> Optional[str]:
        """Why this task's step cannot be captured in a CUDA graph (``--cuda-graph``), or None
        when it can: a tensor batch of fixed shape and a step without host syncs (fixed-step
        Disc-Opt). Default: not supported."""
        return f"the {self.name} task does not support CUDA-graph capture"

    # --- evaluation ---------------------------------------------------------------------------
    def validate(self, ctx: RunContext) -> Dict[str, float]:
        """Validation metrics (keys start with 'val_'), reduced over ranks with ctx.dist.
        May write figures when ctx.is_main. Default: none."""
        return {}

    def finish(self, ctx: RunContext) -> Dict[str, Any]:
        """Rank 0, after the last iteration: final metrics for summary.json (flat keys naming
        split and metric: test_nll, test_bits_per_dim, test_accuracy, test_mse, ...) and
        figures in ctx.folder."""
        return {}

    # --- extra resumable state ------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        """Task state beyond the model and the RNGs (plain data and tensors only)."""
        return {}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        pass

    def run_label(self) -> str:
        """The progress bar's label (e.g. 'latent ode-rnn backprop')."""
        return self.name

    def describe(self, summary: Dict[str, Any]) -> str:
        """One line for the terminal at the end of a run."""
        keys = [k for k in summary if k.startswith(("test_", "val_", "train_"))]
        return ", ".join(f"{k} {summary[k]:.4g}" for k in keys if isinstance(summary[k], (int, float)))
