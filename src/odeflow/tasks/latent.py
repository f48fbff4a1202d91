"""Task `latent`: latent ODE, ODE-RNN or RNN-Δt on irregularly-sampled series (Rubanova et al.
2019; seed 002 eqs. 31-34), interpolation or extrapolation.

Each iteration: `batch` series drawn from the training set, put on the union of their times,
with the encoder's input mask drawn for the task (a `fraction` of the points, or of the points
before t_split); loss -ELBO (eq. 32; KL annealed, `samples` z0 draws, optional IWAE and Poisson
term) for the latent ODE, the Gaussian NLL of the predictions for ODE-RNN / RNN-Δt.
Validation: MSE on the scored points of held-out training series. At the end: test MSE, NLL
(and ELBO), mortality AUC from z0 when the series carry labels (PhysioNet), and figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from ..data import Series
from ..models.elbo import kl_weight
from ..training import RunContext, StepOutput, Task
from ..training.data import iteration_seed
from .latent_config import LatentConfig
from .latent_setup import (
    TaskBatch,
    build_model,
    evaluate,
    load_data,
    make_task_batch,
    mortality_auc,
    summary_features,
    training_loss,
)
from .run import train


@dataclass
class _Batch:
    iteration: int
    tb: TaskBatch


class LatentTask(Task):
    name = "latent"
    monitor = "val_mse"

    config: LatentConfig

    def run_label(self) -> str:
        return f"latent {self.config.model} {self.config.mode}"

    def setup(self, ctx: RunContext) -> None:
        cfg = self.config
        torch.manual_seed(ctx.seed)
        data = load_data(cfg, cfg.seed)
        n_val = min(cfg.val_size, max(1, len(data.train) // 10))
        if len(data.train) - n_val < 1:
            raise ValueError(
                f"{len(data.train)} training series leave none after holding out {n_val} for "
                f"validation; give more series or a smaller --val-size"
            )
        self.data = data
        self.train: List[Series] = data.train[:-n_val]
        self.val: List[Series] = data.train[-n_val:]
        self.device = ctx.device
        self.model = build_model(cfg, len(data.variables)).to(ctx.device)

    def batch(self, iteration: int, ctx: RunContext) -> _Batch:
        cfg = self.config
        g = torch.Generator().manual_seed(iteration_seed(cfg.seed, iteration))
        idx = torch.randint(len(self.train), (cfg.batch,), generator=g)[ctx.dist.shard(cfg.batch)].tolist()
        g_masks = torch.Generator().manual_seed(iteration_seed(cfg.seed, iteration) * 7 + 1 + ctx.dist.rank)
        tb = make_task_batch([self.train[i] for i in idx], cfg, self.data.t_split, g_masks, ctx.device)
        return _Batch(iteration, tb)

    def training_loss(self, batch: _Batch) -> StepOutput:
        cfg = self.config
        beta = kl_weight(batch.iteration, cfg.kl_warmup, cfg.kl_rate)
        loss, metrics = training_loss(self.model, batch.tb, cfg, beta)
        return StepOutput(loss, metrics)

    def validate(self, ctx: RunContext) -> Dict[str, float]:
        self.model.eval()
        try:
            result = evaluate(
                self.model, self.val, self.config, self.data.t_split, self.config.seed + 1, device=ctx.device
            )
        finally:
            self.model.train()
        return {f"val_{k}": float(ctx.dist.mean(v)) if ctx.dist.active else v for k, v in result.items()}

    def finish(self, ctx: RunContext) -> Dict[str, Any]:
        cfg, data = self.config, self.data
        self.model.eval()
        test = evaluate(self.model, data.test, cfg, data.t_split, cfg.seed, device=ctx.device)
        summary: Dict[str, Any] = {f"test_{k}": v for k, v in test.items()}
        summary.update(
            model=cfg.model,
            data=cfg.data,
            task_kind=cfg.task_kind,
            fraction=cfg.fraction,
            t_split=data.t_split,
            n_train=len(self.train),
            n_test=len(data.test),
        )
        labelled = [s for s in data.test if s.label is not None]
        if labelled:
            self.model.cpu()
            tr_x = summary_features(self.model, self.train, cfg, data.t_split, cfg.seed)
            te_x = summary_features(self.model, data.test, cfg, data.t_split, cfg.seed)
            label = lambda ss: torch.tensor([float("nan") if s.label is None else s.label for s in ss])  # noqa: E731
            summary["test_auc"] = mortality_auc(tr_x, label(self.train), te_x, label(data.test))
            self.model.to(ctx.device)
        if ctx.folder is not None:
            from .latent_figures import plot_latent_task
            from .latent_units import DataUnits, write_reconstructions

            self.model.cpu()
            units = DataUnits(data.normalizer, data.time_scale, data.time_origin)
            folder = Path(ctx.folder.path)
            plot_latent_task(self.model, data.test, cfg, data.t_split, cfg.seed, folder, data.variables, units=units)
            write_reconstructions(
                self.model,
                data.test,
                cfg,
                data.t_split,
                cfg.seed,
                data.variables,
                units,
                folder / "reconstructions.csv",
            )
            self.model.to(ctx.device)
        return summary


def train_latent(
    cfg: LatentConfig, out: Optional[Path], progress: bool = True, resume: bool = False, tensorboard: bool = False
) -> Dict[str, Any]:
    """Train (or, with ``resume``, continue) and return summary.json's content."""
    return train("latent", cfg, out, progress, resume, tensorboard)
