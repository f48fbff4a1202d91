"""Image grids as PNG files (samples of image flows, data next to samples)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Union

import numpy as np
from torch import Tensor


def image_grid(images: Union[Tensor, np.ndarray], nrow: Optional[int] = None, pad: int = 1) -> np.ndarray:
    """[N, C, H, W] images (uint8 0..255 or floats in [0, 1]) -> one uint8 array [rows, cols(, 3)]."""
    x = images.detach().cpu().numpy() if isinstance(images, Tensor) else np.asarray(images)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"images must have shape [N, C, H, W] with C = 1 or 3; got {x.shape}")
    if x.dtype != np.uint8:
        x = np.clip(np.rint(np.nan_to_num(x.astype(np.float64)) * 255), 0, 255).astype(np.uint8)
    n, c, h, w = x.shape
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    ncol_rows = int(math.ceil(n / nrow))
    grid = np.full((ncol_rows * (h + pad) + pad, nrow * (w + pad) + pad, c), 255, dtype=np.uint8)
    for i in range(n):
        r, q = divmod(i, nrow)
        grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + q * (w + pad) : pad + q * (w + pad) + w] = x[
            i
        ].transpose(1, 2, 0)
    return grid[..., 0] if c == 1 else grid


def save_image_grid(
    images: Union[Tensor, np.ndarray], path: Union[str, Path], nrow: Optional[int] = None, scale: int = 4
) -> Path:
    """Write the grid as a PNG, each pixel enlarged ``scale`` times (nearest neighbour)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = image_grid(images, nrow)
    grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    plt.imsave(path, grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=255)
    return path
