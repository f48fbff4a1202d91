"""Figures of a trained 2-D flow: data, learned density heatmap, and samples."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from ..data.toy2d import sample_toy  # noqa: E402
from ..flows import CNF  # noqa: E402


def plot_density_and_samples(flow: CNF, data: str, out: Path, lim: float = 4.0, n_grid: int = 80) -> None:
    p = next(flow.parameters())
    xs = torch.linspace(-lim, lim, n_grid, dtype=p.dtype, device=p.device)
    grid = torch.stack(torch.meshgrid(xs, xs, indexing="xy"), dim=-1).reshape(-1, 2)
    saved = flow.divergence
    flow.divergence = "exact"
    with torch.no_grad():
        density = flow.log_prob(grid).exp().reshape(n_grid, n_grid).cpu()
        samples = flow.sample(2000, generator=torch.Generator().manual_seed(0)).cpu()
    flow.divergence = saved
    real = sample_toy(data, 2000, seed=123)
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    axes[0].hist2d(real[:, 0].numpy(), real[:, 1].numpy(), bins=80, range=[[-lim, lim], [-lim, lim]])
    axes[0].set_title(f"data: {data}")
    axes[1].imshow(density.numpy(), origin="lower", extent=(-lim, lim, -lim, lim))
    axes[1].set_title("learned density")
    axes[2].hist2d(samples[:, 0].numpy(), samples[:, 1].numpy(), bins=80, range=[[-lim, lim], [-lim, lim]])
    axes[2].set_title("samples")
    for ax in axes:
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(out / "density.png", dpi=100)
    plt.close(fig)


def plot_forward_inverse(flow: CNF, x: torch.Tensor, path: Path, title: str = "", lim: float = 4.0) -> float:
    """Seed 000 Fig. 7 panels: x ~ rho_0, its image f(x), and f^-1(f(x)), coloured by the angle of x
    so that a mismatch between forward and inverse shows as displaced colours. Returns the
    inverse error mean ||f^-1(f(x)) - x||_2."""
    with torch.no_grad():
        fx = flow.push_forward(x)
        back = flow.inverse(fx)
    err = float((back - x).norm(dim=1).mean())
    x, fx, back = x.cpu(), fx.cpu(), back.cpu()
    colour = torch.atan2(x[:, 1], x[:, 0]).numpy()
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for ax, pts, name in zip(axes, (x, fx, back), ("x ~ data", "f(x)", f"f^-1(f(x)), error {err:.1e}")):
        ax.scatter(pts[:, 0].numpy(), pts[:, 1].numpy(), c=colour, s=2, cmap="hsv")
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_title(name)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return err
