import numpy as np
import pytest
import torch

from odeflow.plotting_images import image_grid, save_image_grid


def test_grid_places_each_image_and_writes_a_png(tmp_path):
    x = torch.arange(5 * 2 * 2, dtype=torch.uint8).reshape(5, 1, 2, 2) * 10
    grid = image_grid(x, nrow=3, pad=1)
    assert grid.shape == (2 * 3 + 1, 3 * 3 + 1)
    assert np.array_equal(grid[1:3, 4:6], x[1, 0].numpy())  # second image: row 0, column 1
    assert np.array_equal(grid[4:6, 1:3], x[3, 0].numpy())  # fourth image: row 1, column 0
    path = save_image_grid(torch.rand(4, 3, 4, 4), tmp_path / "grid.png")
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    assert img.shape[:2] == (4 * (2 * 5 + 1), 4 * (2 * 5 + 1))


def test_bad_shape():
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        image_grid(torch.zeros(2, 2, 4, 4))
