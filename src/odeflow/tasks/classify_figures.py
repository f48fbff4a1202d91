"""Figures of the classify task: confusion matrix; for 2-D inputs the decision boundary and
the flow of points through the ODE block (t = 0 -> T)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from ..models.classifiers import ODEClassifier  # noqa: E402


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """counts[i, j] = number of samples of true class i predicted as j (int64 [K, K])."""
    if pred.shape != target.shape:
        raise ValueError(f"predictions {tuple(pred.shape)} and targets {tuple(target.shape)} differ in shape")
    idx = target.long() * num_classes + pred.long()
    return torch.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def plot_confusion(counts: Tensor, path: Path, title: str = "") -> None:
    k, counts = counts.shape[0], counts.cpu()
    fig, ax = plt.subplots(figsize=(1.0 + 0.45 * k, 0.8 + 0.45 * k))
    ax.imshow(counts.numpy(), cmap="Blues")
    top = float(counts.max()) if counts.numel() else 1.0
    for i in range(k):
        for j in range(k):
            v = int(counts[i, j])
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7, color="white" if v > top / 2 else "black")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@torch.no_grad()
def plot_decision_boundary(
    model: ODEClassifier, x: Tensor, y: Tensor, path: Path, lim: float = 2.0, n_grid: int = 120, title: str = ""
) -> None:
    """P(class 1) (or the predicted class for K > 2) over a grid, with the points on top."""
    g = torch.linspace(-lim, lim, n_grid)
    grid = torch.stack(torch.meshgrid(g, g, indexing="xy"), -1).reshape(-1, 2)
    probs = torch.softmax(model(grid.to(x.device, x.dtype)), dim=1).cpu()
    field = probs[:, 1] if probs.shape[1] == 2 else probs.argmax(1).to(probs.dtype)
    x, y = x.cpu(), y.cpu()
    fig, ax = plt.subplots(figsize=(4.2, 4))
    mesh = ax.contourf(g, g, field.reshape(n_grid, n_grid), levels=20, cmap="RdBu_r", alpha=0.8)
    fig.colorbar(mesh, ax=ax, fraction=0.046)
    ax.scatter(x[:, 0], x[:, 1], c=y, s=3, cmap="coolwarm", edgecolors="k", linewidths=0.1)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@torch.no_grad()
def plot_flow(
    model: ODEClassifier, x: Tensor, y: Tensor, path: Path, times: Sequence[float] = (0.0, 0.5, 1.0), title: str = ""
) -> None:
    """Block states at fractions ``times`` of T: dims (0, 1); for augmented states also (0, 2) at T."""
    T = float(model.block.T)
    states = model.flow(x, [T * s for s in times]).cpu()
    y = y.cpu()
    extra = states.shape[-1] > 2
    n = len(times) + int(extra)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.2))
    for ax, s, h in zip(axes, times, states):
        ax.scatter(h[:, 0], h[:, 1], c=y, s=3, cmap="coolwarm")
        ax.set_title(f"t = {s * T:.2f}", fontsize=9)
        ax.set_aspect("equal", adjustable="datalim")
    if extra:
        ax = axes[-1]
        ax.scatter(states[-1][:, 0], states[-1][:, 2], c=y, s=3, cmap="coolwarm")
        ax.set_title(f"t = {T:.2f}: h0 vs augmented h2", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
