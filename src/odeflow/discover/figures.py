"""Figures of a discovery run: observations vs the fitted neural ODE, and a phase portrait."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from torch import Tensor  # noqa: E402


def plot_fit(t: Tensor, x: Tensor, fit, names: Sequence[str], path: Path, trajectory: Optional[Tensor] = None) -> None:
    """Each variable over time (observations as dots, the fitted ODE rolled from its learned
    states as lines, one colour per trajectory) and, for d >= 2, the phase portrait of the first
    two variables."""
    d = x.shape[1]
    cols = d + (1 if d >= 2 else 0)
    fig, axes = plt.subplots(1, cols, figsize=(4 * cols, 3.3), squeeze=False)
    ts, xs, _, _, tr = fit.samples(2000)
    order = np.lexsort((ts, tr))
    ts, xs, tr = ts[order], xs[order], tr[order]
    obs_tr = np.zeros(len(t), dtype=int) if trajectory is None else np.asarray(trajectory)
    x_np, t_np = np.asarray(x), np.asarray(t)
    for k in np.unique(tr)[:10]:  # at most 10 trajectories drawn
        on, obs = tr == k, obs_tr == k
        colour = f"C{int(k) % 10}"
        for i in range(d):
            ax = axes[0][i]
            ax.plot(t_np[obs], x_np[obs, i], ".", ms=3, color="0.4", label="observations" if k == 0 else None)
            ax.plot(ts[on], xs[on, i], "-", color=colour, lw=1.2, label="neural ODE" if k == 0 else None)
        if d >= 2:
            axes[0][d].plot(x_np[obs, 0], x_np[obs, 1], ".", ms=3, color="0.4")
            axes[0][d].plot(xs[on, 0], xs[on, 1], "-", color=colour, lw=1.2)
    for i in range(d):
        axes[0][i].set_xlabel("t")
        axes[0][i].set_ylabel(names[i])
    axes[0][0].legend(fontsize=7)
    if d >= 2:
        axes[0][d].set_xlabel(names[0])
        axes[0][d].set_ylabel(names[1])
        axes[0][d].set_title("phase portrait")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
