"""Task `classify`: ODE-Net classifiers (Chen et al. 2018) and their ResNet twin, augmented and
second-order variants (seed 002 §1 and Extensions) on images or 2-D points.

Each iteration: a shuffled minibatch of the training split (epochs of the training set minus a
held-out validation fraction); loss = cross-entropy + lambda_K * mean E(T) (RNODE kinetic
energy, optional); metrics: loss, accuracy, kinetic, NFE forward/backward. Validation: loss and
accuracy on the held-out part. At the end: test accuracy, loss and NFE, parameter count,
seconds per epoch, confusion matrix PNG; for 2-D data the decision boundary and the flow of
the test points through the block.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.classification import held_out_count, holdout, load_classification
from ..models.classifiers import ODEClassifier, conv_classifier, count_parameters, mlp_classifier
from ..training import RunContext, StepOutput, Task
from ..training.data import EpochBatches
from ..training.schedule import Stage
from .classify_config import ClassifyConfig
from .run import train

NUM_CLASSES = {"annuli": 2, "digits": 10, "mnist5k": 10, "mnist": 10, "fashion-mnist": 10, "cifar10": 10}


def build_classifier(cfg: ClassifyConfig, x_shape: Tuple[int, ...]) -> ODEClassifier:
    """The model for inputs of shape [batch, *x_shape] (an image [C, H, W] or a vector [D])."""
    common = dict(
        T=cfg.T,
        method=cfg.method,
        step=cfg.step(),
        adjoint=cfg.mode == "opt-disc",
        kinetic=cfg.kinetic,
        resnet_steps=cfg.resnet_blocks() or 1,
    )
    classes = NUM_CLASSES[cfg.data]
    if len(x_shape) == 3:
        down = cfg.downsample if cfg.downsample is not None else (1 if max(x_shape[1:]) <= 16 else 2)
        return conv_classifier(
            cfg.model,
            x_shape[0],
            classes,
            channels=cfg.channels,
            downsample=down,
            augment=8 if cfg.augment is None else cfg.augment,
            **common,
        )
    if len(x_shape) == 1:
        return mlp_classifier(
            cfg.model,
            x_shape[0],
            classes,
            hidden=cfg.hidden,
            activation=cfg.activation,
            augment=1 if cfg.augment is None else cfg.augment,
            **common,
        )
    raise ValueError(f"inputs must be images [C, H, W] or vectors [D]; got a sample of shape {x_shape}")


def iterations_per_epoch(n_train: int, batch: int) -> int:
    """Full batches per pass over n_train samples (the last incomplete batch is dropped)."""
    if batch > n_train:
        raise ValueError(f"batch {batch} is larger than the training set ({n_train} samples); use a smaller --batch")
    return n_train // batch


class ClassifyTask(Task):
    name = "classify"
    monitor = "val_loss"

    config: ClassifyConfig

    def __init__(self, config: ClassifyConfig) -> None:
        super().__init__(config)
        if config.epochs is not None:  # epochs -> iterations over the training split
            n = len(load_classification(config.data, "train", config.data_dir, seed=config.seed)[1])
            n_train = n - held_out_count(n, config.val_fraction)
            config.iterations = config.epochs * iterations_per_epoch(n_train, config.batch_size)

    def run_label(self) -> str:
        return f"classify {self.config.model} {self.config.data}"

    def setup(self, ctx: RunContext) -> None:
        cfg = self.config
        torch.manual_seed(ctx.seed)
        x, y = load_classification(cfg.data, "train", cfg.data_dir, seed=cfg.seed)
        keep, held = holdout(len(y), cfg.val_fraction, seed=cfg.seed)
        dev = ctx.device
        self.x_train, self.y_train = x[keep].to(dev), y[keep].to(dev)
        self.x_val, self.y_val = x[held].to(dev), y[held].to(dev)
        self.model = self.net = build_classifier(cfg, tuple(x.shape[1:])).to(dev)
        self.batches = EpochBatches(len(keep), cfg.batch_size, cfg.seed, ctx.dist)

    def enter_stage(self, stage: Stage) -> None:
        self.net.set_solver(stage.method, stage.step())

    def batch(self, iteration: int, ctx: RunContext) -> Tuple[Tensor, Tensor]:
        idx = self.batches.indices(iteration).to(self.x_train.device)
        return self.x_train[idx], self.y_train[idx]

    def training_loss(self, batch: Tuple[Tensor, Tensor]) -> StepOutput:
        x, y = batch
        out = self.net.classify(x, regularize=True)
        ce = F.cross_entropy(out.logits, y)
        loss = ce
        metrics: Dict[str, Any] = dict(ce=ce.detach())
        if out.kinetic is not None:
            kin = out.kinetic.mean()
            loss = ce + self.net.kinetic * kin
            metrics["kinetic"] = kin.detach()
        stats = out.stats
        metrics.update(
            loss=loss.detach(),
            accuracy=(out.logits.detach().argmax(1) == y).float().mean(),
            nfe_forward=stats.nfe,
            nfe_backward=lambda: stats.nfe_backward,
        )
        return StepOutput(loss, metrics)

    @torch.no_grad()
    def _evaluate(self, x: Tensor, y: Tensor, batch: int = 1000) -> Tuple[Tensor, Tensor, int]:
        """(per-sample cross-entropy, predictions, NFE of the first chunk's solve)."""
        losses, preds, nfe = [], [], None
        for i in range(0, len(y), batch):
            out = self.net.classify(x[i : i + batch])
            losses.append(F.cross_entropy(out.logits, y[i : i + batch], reduction="none"))
            preds.append(out.logits.argmax(1))
            nfe = out.stats.nfe if nfe is None else nfe
        return torch.cat(losses), torch.cat(preds), int(nfe or 0)

    def validate(self, ctx: RunContext) -> Dict[str, float]:
        self.net.eval()
        shard = slice(ctx.dist.rank, None, ctx.dist.world_size)
        ce, pred, _ = self._evaluate(self.x_val[shard], self.y_val[shard])
        self.net.train()
        correct = (pred == self.y_val[shard]).float()
        return dict(val_loss=ctx.dist.sample_mean(ce), val_accuracy=ctx.dist.sample_mean(correct))

    def finish(self, ctx: RunContext) -> Dict[str, Any]:
        cfg, net = self.config, self.net
        net.eval()
        x, y = load_classification(cfg.data, "test", cfg.data_dir, seed=cfg.seed)
        x, y = x.to(self.x_train.device), y.to(self.x_train.device)
        ce, pred, nfe = self._evaluate(x, y)
        per_epoch = self.batches.per_epoch
        wall = ctx.history[-1].get("wall_time", float("nan")) if ctx.history else float("nan")
        summary: Dict[str, Any] = dict(
            test_accuracy=float((pred == y).float().mean()),
            test_loss=float(ce.mean()),
            test_nfe=nfe,
            parameters=count_parameters(net),
            iterations_per_epoch=per_epoch,
            epochs_trained=(ctx.iteration + 1) / per_epoch,
            seconds_per_epoch=wall / (ctx.iteration + 1) * per_epoch,
        )
        if ctx.folder is not None:
            from .classify_figures import confusion_matrix, plot_confusion, plot_decision_boundary, plot_flow

            cpu = net.to("cpu")
            counts = confusion_matrix(pred.cpu(), y.cpu(), NUM_CLASSES[cfg.data])
            summary["test_confusion"] = counts.tolist()
            title = f"{cfg.model} on {cfg.data}: test accuracy {summary['test_accuracy']:.4f}"
            plot_confusion(counts, ctx.folder.file("confusion.png"), title)
            if x.dim() == 2 and x.shape[1] == 2:
                xs, ys = x[:1000].cpu(), y[:1000].cpu()
                plot_decision_boundary(cpu, xs, ys, ctx.folder.file("decision_boundary.png"), title=title)
                plot_flow(cpu, xs, ys, ctx.folder.file("flow.png"), title=f"{cfg.model}: points through the block")
        return summary


def train_classify(
    cfg: ClassifyConfig, out: Optional[Path], progress: bool = True, resume: bool = False, tensorboard: bool = False
) -> Dict[str, Any]:
    """Train (epochs converted to iterations) and return summary.json's content."""
    return train("classify", cfg, out, progress, resume, tensorboard)


def load_classifier(path: Path) -> Tuple[ODEClassifier, ClassifyConfig]:
    """(model in eval mode, its training config) from a best.pt or last.pt of `odeflow train classify`."""
    import dataclasses

    from ..training.checkpoint import load_checkpoint

    state = load_checkpoint(path)
    if state.get("kind") != ClassifyTask.name:
        raise ValueError(
            f"checkpoint {path} holds a {state.get('kind', 'unknown')!r} model, not a classifier; "
            "pass a best.pt or last.pt written by `odeflow train classify`"
        )
    known = {f.name for f in dataclasses.fields(ClassifyConfig)}
    cfg = ClassifyConfig(**{k: v for k, v in state["config"].items() if k in known})
    x, _ = load_classification(cfg.data, "test", cfg.data_dir, seed=cfg.seed)
    model = build_classifier(cfg, tuple(x.shape[1:]))
    model.load_state_dict(state["model"])
    return model.eval(), cfg


@torch.no_grad()
def evaluate_classifier(
    model: ODEClassifier, x: Tensor, y: Tensor, batch: int = 1000, progress: bool = False
) -> Dict[str, float]:
    """Test accuracy, mean cross-entropy and NFE per forward solve with the model's current solver."""
    from ..training.progress import chunk_starts

    correct, loss, nfe = 0.0, 0.0, 0
    for i in chunk_starts(len(y), batch, "test accuracy", enabled=progress):
        out = model.classify(x[i : i + batch])
        loss += float(F.cross_entropy(out.logits, y[i : i + batch], reduction="sum"))
        correct += float((out.logits.argmax(1) == y[i : i + batch]).sum())
        nfe = max(nfe, out.stats.nfe)
    return dict(accuracy=correct / len(y), loss=loss / len(y), nfe=nfe)
