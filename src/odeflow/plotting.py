"""Figures people look at instead of reading tables (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from torch import Tensor  # noqa: E402


def plot_trajectories(t: Tensor, reference: Tensor, curves: Dict[str, Tensor], path: Path) -> None:
    """Phase portrait of 2-D trajectories against a reference, and the error over time."""
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4))
    ax0.plot(reference[:, 0], reference[:, 1], "k-", lw=3, alpha=0.3, label="reference")
    for label, ys in curves.items():
        ax0.plot(ys[:, 0].detach(), ys[:, 1].detach(), lw=1, label=label)
        ax1.semilogy(t, (ys - reference).abs().max(dim=1).values.detach().clamp_min(1e-17), label=label)
    ax0.set_xlabel("u1")
    ax0.set_ylabel("u2")
    ax0.legend(fontsize=8)
    ax1.set_xlabel("t")
    ax1.set_ylabel("max |error|")
    ax1.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_samples(x, path: Path, lim: float = 4.0) -> None:
    """Scatter of 2-D samples x [n, 2] (array or tensor)."""
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.scatter(x[:, 0], x[:, 1], s=2)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_loss_vs_time(history: Sequence[Dict[str, Any]], path: Path, title: str = "") -> None:
    """Training loss (faint) and validation NLL (markers) against training time (wall_time)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    rows = [r for r in history if "wall_time" in r and "loss" in r]
    ax.plot(
        [r["wall_time"] for r in rows],
        [r["loss"] for r in rows],
        color="tab:blue",
        alpha=0.3,
        lw=0.8,
        label="training loss",
    )
    val = [r for r in rows if isinstance(r.get("val_nll"), (int, float))]
    if val:
        ax.plot(
            [r["wall_time"] for r in val],
            [r["val_nll"] for r in val],
            "o-",
            color="tab:red",
            ms=3,
            label="validation NLL (exact trace)",
        )
    ax.set_xlabel("training time (s)")
    ax.set_ylabel("NLL (nats)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
