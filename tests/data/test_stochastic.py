import pytest
import torch

from odeflow.data.stochastic import ou_moments, sde_paths


def test_ou_paths_match_exact_moments():
    t = torch.linspace(0, 3, 7)
    paths = sde_paths("ornstein-uhlenbeck", 4000, t, seed=0, dtype=torch.float64)
    mean, std = ou_moments(t)
    assert (paths.mean(dim=1)[:, 0] - mean).abs().max() < 0.02  # 4 sampling std at n = 4000
    assert (paths.std(dim=1)[:, 0] - std).abs().max() < 0.02


def test_double_well_splits_towards_both_wells():
    paths = sde_paths("double-well", 500, torch.linspace(0, 8, 5), seed=1)
    end = paths[-1, :, 0]
    assert (end > 0.5).float().mean() > 0.3 and (end < -0.5).float().mean() > 0.3


def test_unknown():
    with pytest.raises(ValueError, match="valid: double-well, ornstein-uhlenbeck"):
        sde_paths("lorenz", 3, torch.linspace(0, 1, 3))
