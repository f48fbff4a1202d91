"""Figures of a discovery run: observations vs the fitted neural ODE, and a phase portrait."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from torch import Tensor  # noqa: E402


def plot_fit(t: Tensor, x: Tensor, t_reg: Tensor, x_reg: Tensor, names: Sequence[str], path: Path) -> None:
    """Each variable over time (observations as dots, fitted ODE as a line) and, for d >= 2,
    the phase portrait of the first two variables."""
    d = x.shape[1]
    cols = d + (1 if d >= 2 else 0)
    fig, axes = plt.subplots(1, cols, figsize=(4 * cols, 3.3), squeeze=False)
    for i in range(d):
        ax = axes[0][i]
        ax.plot(t, x[:, i], ".", ms=3, color="0.4", label="observations")
        ax.plot(t_reg, x_reg[:, i], "C0-", lw=1.2, label="neural ODE")
        ax.set_xlabel("t")
        ax.set_ylabel(names[i])
    axes[0][0].legend(fontsize=7)
    if d >= 2:
        ax = axes[0][d]
        ax.plot(x[:, 0], x[:, 1], ".", ms=3, color="0.4")
        ax.plot(x_reg[:, 0], x_reg[:, 1], "C0-", lw=1.2)
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
        ax.set_title("phase portrait")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
