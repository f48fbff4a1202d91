"""Figures of the dynamics tasks: phase portraits, energy over time, α bar charts, SDE bands."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from torch import Tensor  # noqa: E402


def phase_portraits(curves: Dict[str, Tensor], path: Path, title: str = "", n: int = 4) -> None:
    """curves: label -> trajectories [T, batch, 2]; the first n trajectories of each, one style per label."""
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    for c, (label, zs) in enumerate(curves.items()):
        for i in range(min(n, zs.shape[1])):
            ax.plot(
                zs[:, i, 0],
                zs[:, i, 1],
                color=f"C{c}",
                lw=1,
                ls="-" if c == 0 else "--",
                label=label if i == 0 else None,
            )
    ax.set_xlabel("q / x")
    ax.set_ylabel("p / y")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def energy_over_time(t: Tensor, drift: Dict[str, Tensor], path: Path, horizon: float) -> None:
    """drift: label -> |H(z(t)) − H(z0)| [T] on a log scale; the training horizon marked."""
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for label, d in drift.items():
        ax.semilogy(t, d.clamp_min(1e-10), label=label)
    ax.axvline(horizon, color="k", ls=":", lw=0.8)
    ax.set_xlabel("t (dotted: training horizon)")
    ax.set_ylabel("|H(z(t)) - H(z0)|, true H")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def alpha_bars(alphas: Dict[str, Sequence[float]], path: Path) -> None:
    """alphas: label (a system) -> coefficients [K]; grouped bars per basis function."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    labels = list(alphas)
    k = len(alphas[labels[0]])
    width = 0.8 / len(labels)
    for i, label in enumerate(labels):
        ax.bar([j + i * width for j in range(k)], list(alphas[label]), width, label=label)
    ax.set_xlabel("basis function i")
    ax.set_ylabel("alpha_i")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sde_bands(t: Tensor, data: Tensor, model_paths: Tensor, path: Path) -> None:
    """Data paths (grey), data mean ± 2 std and model mean ± 2 std, first state variable."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for i in range(min(30, data.shape[1])):
        ax.plot(t, data[:, i, 0], color="0.75", lw=0.5)
    for label, paths, color in (("data", data, "k"), ("neural SDE", model_paths, "C0")):
        m, s = paths[..., 0].mean(dim=1), paths[..., 0].std(dim=1)
        ax.plot(t, m, color=color, ls="-" if color == "k" else "--", label=f"{label} mean ± 2 std")
        ax.fill_between(t, m - 2 * s, m + 2 * s, color=color, alpha=0.12)
    ax.set_xlabel("t")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
