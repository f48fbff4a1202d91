"""Task `timeseries`: a neural ODE fitted to one time series (seed 000 §4.1), either gradient mode.

Each iteration: solve from u0 through all observation times, loss = sum of squared errors,
backward, Adam step. Logged per iteration: loss, wall time (derivative checks excluded),
forward and backward NFE. The run folder holds config, metrics, checkpoints and figures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import Tensor

from ..data import load_series_csv, make_spiral
from ..gradients import derivative_check
from ..models import TimeSeriesODE, VectorFieldMLP
from ..training import RunContext, StepOutput, Task, Trainer
from .timeseries_config import TimeSeriesConfig

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def load_data(cfg: TimeSeriesConfig) -> Tuple[Tensor, Tensor]:
    dtype = DTYPES[cfg.dtype]
    if cfg.data == "spiral":
        return make_spiral(dtype=dtype)
    t, u, _ = load_series_csv(cfg.data, time_column=cfg.time_column, dtype=dtype)
    return t, u


def build_model(cfg: TimeSeriesConfig, dim: int) -> TimeSeriesODE:
    torch.manual_seed(cfg.seed)  # same seed -> identical initial parameters in both modes
    return TimeSeriesODE(VectorFieldMLP(dim, cfg.hidden, cfg.activation, cfg.transform, DTYPES[cfg.dtype]))


@dataclass
class TrainResult:
    losses: List[float]
    wall: List[float]
    ms_per_iter: float
    final_loss: float
    iters_to_threshold: Optional[int]
    time_to_threshold: Optional[float]
    checks: Dict[int, Dict[str, Any]]
    snapshots: Dict[int, Tensor]
    nfe_forward: float
    nfe_backward: float


class TimeSeriesTask(Task):
    model: TimeSeriesODE  # set by setup
    name = "timeseries"
    shards_batch = False  # one series: under torchrun every rank fits all of it (same gradient)

    config: TimeSeriesConfig

    def run_label(self) -> str:
        return self.config.mode

    def setup(self, ctx: RunContext) -> None:
        cfg = self.config
        t, u = load_data(cfg)
        self.t, self.u = t.to(ctx.device), u.to(ctx.device)
        self.model = build_model(cfg, u.shape[1]).to(ctx.device)
        self.kw = cfg.solver_kwargs()
        self.checks: Dict[int, Dict[str, Any]] = {}
        self.snapshots: Dict[int, Tensor] = {}
        self.iteration = 0
        self.solved_compiled = False  # the last training solve ran compiled

    def _loss(self) -> Tensor:
        return self.model.loss(self.model.solve(self.u[0], self.t, **self.kw).ys, self.u)

    def before_iteration(self, iteration: int, ctx: RunContext) -> None:
        self.iteration = iteration
        if iteration in self.config.check_at:  # not timed: the Taylor test is a diagnostic
            chk = derivative_check(self._loss, list(self.model.parameters()), seed=self.config.seed)
            self.checks[iteration] = dict(chk.__dict__, passed=chk.passed)

    def batch(self, iteration: int, ctx: RunContext) -> None:
        return None  # the whole series every iteration

    def training_loss(self, batch: None) -> StepOutput:
        sol = self.model.solve(self.u[0], self.t, **self.kw)
        self.solved_compiled = sol.compiled
        loss = self.model.loss(sol.ys, self.u)
        if self.iteration in self.config.snapshot_at:
            self.snapshots[self.iteration] = sol.ys.detach().to("cpu", copy=True)
        stats = sol.stats
        return StepOutput(
            loss, dict(loss=loss.detach(), nfe_forward=stats.nfe, nfe_backward=lambda: stats.nfe_backward)
        )

    def compiles(self) -> bool:
        """The last training solve ran compiled (compile 'on', or 'auto' once it decided to)."""
        return self.solved_compiled

    def state_dict(self) -> Dict[str, Any]:
        return dict(checks=self.checks, snapshots=self.snapshots)

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.checks, self.snapshots = state["checks"], state["snapshots"]

    def result(self, history: List[Dict[str, Any]]) -> TrainResult:
        cfg = self.config
        losses = [float(r["loss"]) for r in history]
        wall = [float(r["wall_time"]) for r in history]
        hit = next((i for i, v in enumerate(losses) if v < cfg.loss_threshold), None)
        n = len(history)
        return TrainResult(
            losses,
            wall,
            1e3 * wall[-1] / n,
            losses[-1],
            None if hit is None else hit + 1,
            None if hit is None else wall[hit],
            self.checks,
            self.snapshots,
            sum(float(r["nfe_forward"]) for r in history) / n,
            sum(float(r["nfe_backward"]) for r in history) / n,
        )

    def finish(self, ctx: RunContext) -> Dict[str, Any]:
        cfg = self.config
        n = ctx.iteration + 1
        if n in cfg.snapshot_at:
            with torch.no_grad():
                self.snapshots[n] = self.model.solve(self.u[0], self.t, **self.kw).ys.detach().to("cpu", copy=True)
        self.final = self.result(ctx.history)
        summary = {k: v for k, v in asdict(self.final).items() if k not in ("losses", "wall", "snapshots", "checks")}
        summary["train_loss"] = self.final.final_loss
        summary["train_mse"] = self.final.final_loss / self.u[1:].numel()
        if ctx.folder is not None:
            ctx.folder.write_json("derivative_checks.json", self.checks)
            from .timeseries_figures import write_figures

            write_figures(ctx.folder.path, cfg, self.model, self.t.cpu(), self.u.cpu(), {cfg.mode: self.final})
        return summary


def train_timeseries(
    cfg: TimeSeriesConfig,
    out: Optional[Path] = None,
    progress: bool = True,
    resume: bool = False,
    tensorboard: bool = False,
) -> TrainResult:
    """Train one model; with ``out`` write the run folder (config, metrics.csv, checkpoints, figures)."""
    task = TimeSeriesTask(cfg)
    trainer = Trainer(task, out, quiet=not progress, tensorboard=tensorboard, resume=resume, label=cfg.mode)
    trainer.fit()
    return task.final if hasattr(task, "final") else task.result(trainer.history)  # ranks > 0 skip finish
