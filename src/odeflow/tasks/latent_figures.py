"""Figures of the latent task: observed points, the prediction on a dense time grid with a band
from several z0 samples, the latent trajectories and the Poisson intensity (when used)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import torch
from torch import Tensor

from ..data import Series
from .latent_setup import LatentSettings, TaskBatch, make_task_batch, predict
from .latent_units import DataUnits


def _on_dense_grid(tb: TaskBatch, n_dense: int) -> TaskBatch:
    """The same batch on the union of its times and n_dense equispaced ones (masks 0 there)."""
    b = tb.batch
    dense = torch.linspace(float(b.times[0]), float(b.times[-1]), n_dense, dtype=b.times.dtype)
    times = torch.unique(torch.cat([b.times, dense]))
    idx = torch.searchsorted(times, b.times)
    grow = lambda x: x.new_zeros(x.shape[0], times.shape[0], x.shape[2]).index_copy_(1, idx, x)  # noqa: E731
    from ..data import IrregularBatch

    return TaskBatch(IrregularBatch(times, grow(b.values), grow(b.mask), b.labels), grow(tb.inp), grow(tb.target))


@torch.no_grad()
def plot_latent_task(
    model: torch.nn.Module,
    series: List[Series],
    s: LatentSettings,
    t_split: float,
    seed: int,
    folder: Path,
    variables: Optional[List[str]] = None,
    n_series: int = 4,
    n_dense: int = 200,
    units: Optional[DataUnits] = None,
) -> List[Path]:
    """Write predictions.png (and latents.png, intensity.png for the latent ODE); return the paths.
    With ``units`` the predictions are drawn in the data's own time and value units."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    g = torch.Generator().manual_seed(seed + 7919)  # the evaluation's masks
    tb = _on_dense_grid(make_task_batch(series[:n_series], s, t_split, g, per_sample=False), n_dense)
    pred, out = predict(model, tb, s.eval_samples)  # [K, B, T, D]
    units = units or DataUnits()
    t = units.times(tb.batch.times).numpy()
    d = (
        0 if not variables else max(range(len(variables)), key=lambda j: float(tb.batch.mask[:, :, j].sum()))
    )  # best-observed variable
    name = variables[d] if variables else "x"
    B = pred.shape[1]
    fig, axes = plt.subplots(1, B, figsize=(4 * B, 3.2), squeeze=False)
    for b, ax in enumerate(axes[0]):
        inp, tgt = tb.inp[b, :, d] > 0, tb.target[b, :, d] > 0
        x = units.values(tb.batch.values[b, :, d], d)
        ax.scatter(t[inp.numpy()], x[inp].numpy(), s=12, c="k", label="observed (encoder input)", zorder=3)
        ax.scatter(
            t[tgt.numpy()],
            x[tgt].numpy(),
            s=12,
            facecolors="none",
            edgecolors="tab:red",
            label="held out (scored)",
            zorder=3,
        )
        k = units.values(pred[:, b, :, d], d)
        ax.plot(t, k.mean(0).numpy(), c="tab:blue", label="prediction (posterior mean)")
        if k.shape[0] > 1:
            lo, hi = torch.quantile(k, 0.05, dim=0), torch.quantile(k, 0.95, dim=0)
            ax.fill_between(
                t, lo.numpy(), hi.numpy(), color="tab:blue", alpha=0.25, label=f"5-95% over {k.shape[0]} z0 samples"
            )
        if s.task_kind == "extrapolation":
            ax.axvline(float(units.times(torch.tensor(t_split))), c="gray", ls="--", lw=0.8)
        ax.set_xlabel("t")
        ax.set_title(f"{series[b].name or b}: {name}", fontsize=9)
    axes[0][0].legend(fontsize=6, loc="best")
    fig.suptitle(f"{s.model} on {s.data}, {s.task_kind}, {int(100 * s.fraction)}% observed", fontsize=10)
    fig.tight_layout()
    paths = [folder / "predictions.png"]
    fig.savefig(paths[0], dpi=110)
    plt.close(fig)
    if out is not None:
        paths.append(_plot_latents(out.z[:, :, 0], t, folder / "latents.png", plt))
        if out.log_intensity is not None:
            paths.append(
                _plot_intensity(out.log_intensity[:, 0], tb.inp[0], t, folder / "intensity.png", plt, variables)
            )
    return paths


def _plot_latents(z: Tensor, t, path: Path, plt) -> Path:
    """z: [T, K, L] of the first series."""
    L = z.shape[-1]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for j in range(L):
        for k in range(z.shape[1]):
            ax.plot(t, z[:, k, j].numpy(), c=f"C{j}", alpha=0.25 if z.shape[1] > 1 else 1.0, lw=0.8)
    ax.set_xlabel("t")
    ax.set_ylabel("z(t)")
    ax.set_title(f"latent trajectories of the first series ({L} dimensions, {z.shape[1]} z0 samples)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_intensity(log_lam: Tensor, inp: Tensor, t, path: Path, plt, variables) -> Path:
    """log_lam: [K, T, D] of the first series; observed times as ticks."""
    lam = log_lam.exp().mean(0)
    top = lam.mean(0).argsort(descending=True)[:4].tolist()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for j in top:
        label = variables[j] if variables else f"variable {j}"
        ax.plot(t, lam[:, j].numpy(), label=f"λ {label}")
        obs = inp[:, j] > 0
        ax.plot(t[obs.numpy()], [0.0] * int(obs.sum()), "|", c=ax.lines[-1].get_color(), ms=10)
    ax.set_xlabel("t")
    ax.set_ylabel("intensity λ(t)")
    ax.set_title("Poisson intensity (ticks: observation times)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
