"""The seed 000 figures for time-series regression: fit snapshots (Fig. 2), loss against
iterations and wall time (Fig. 3), derivative checks (Fig. 4) and extrapolation (Fig. 5)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Dict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from ..gradients.derivative_check import DerivativeCheck, plot_derivative_check  # noqa: E402
from ..problems import SpiralField  # noqa: E402
from ..solve import solve  # noqa: E402
from ..solvers.stepping import Adaptive  # noqa: E402

if TYPE_CHECKING:
    from .timeseries import TimeSeriesConfig, TrainResult


def plot_snapshots(path: Path, t: Tensor, u: Tensor, result: TrainResult, title: str) -> None:
    n = len(result.snapshots)
    fig, axes = plt.subplots(1, max(n, 1), figsize=(3.2 * max(n, 1), 3), squeeze=False)
    for ax, (it, ys) in zip(axes[0], sorted(result.snapshots.items())):
        ax.plot(u[:, 0], u[:, 1], "ko", ms=3, label="data")
        ax.plot(ys[:, 0], ys[:, 1], "r-", label="model")
        ax.set_title(f"{title}: iteration {it}")
    if result.snapshots:
        axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_losses(path: Path, results: Dict[str, TrainResult]) -> None:
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(9, 3.5))
    for mode, r in results.items():
        a0.semilogy(range(1, len(r.losses) + 1), r.losses, label=f"{mode} ({r.ms_per_iter:.1f} ms/iter)")
        a1.semilogy(r.wall, r.losses, label=mode)
    a0.set_xlabel("iteration")
    a1.set_xlabel("wall time (s)")
    for a in (a0, a1):
        a.set_ylabel("loss")
        a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_extrapolation(path: Path, model, u0: Tensor, t_end: float, dtype: torch.dtype) -> None:
    t = torch.linspace(0, t_end, 400, dtype=torch.float64)
    truth = solve(SpiralField(), u0.to(torch.float64), t, method="tsit5", step=Adaptive(1e-10, 1e-12)).ys
    device = next(model.parameters()).device
    with torch.no_grad():
        pred = solve(model.field, u0.to(device), t.to(dtype), method="dopri5", step=Adaptive(1e-7, 1e-9)).ys.cpu()
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(truth[:, 0], truth[:, 1], "k-", lw=2, alpha=0.4, label=f"truth to t={t_end}")
    ax.plot(pred[:, 0], pred[:, 1], "r--", label="model")
    ax.legend(fontsize=8)
    ax.set_title("extrapolation")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_figures(
    out: Path, cfg: TimeSeriesConfig, model, t: Tensor, u: Tensor, results: Dict[str, TrainResult]
) -> None:
    for mode, r in results.items():
        plot_snapshots(out / f"fit_{mode}.png", t, u, r, mode)
        for it, chk in r.checks.items():
            data = {k: chk[k] for k in ("hs", "e0", "e1", "slope0", "slope1")}
            plot_derivative_check(
                DerivativeCheck(**data), str(out / f"derivative_check_{mode}_it{it}.png"), f"{mode}, iteration {it}"
            )
    plot_losses(out / "loss.png", results)
    if cfg.data == "spiral":
        plot_extrapolation(out / "extrapolation.png", model, u[0], cfg.extrapolate_to, u.dtype)
