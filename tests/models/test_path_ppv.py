"""PPV features of the observed points: thresholds equal numpy's quantiles of the pooled terms, the
features equal an explicit loop over each series' own observed points per channel (randomized
batches with per-channel masks, float64), a point dropped at random leaves a series' value PPV
within the change of one point, and bad settings fail clearly."""

import numpy as np
import pytest
import torch

from helpers.series_batches import one_thread  # noqa: F401  (an autouse fixture)
from odeflow.models.path_ppv import PathPPV


def _batch(seed, B=5, T=30, D=3):
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(B, T, D, generator=g, dtype=torch.float64).cumsum(1)
    mask = (torch.rand(B, T, D, generator=g) < 0.6).to(torch.float64)
    if B > 1 and D > 1:
        mask[0, :, 0] = 0.0  # a channel never observed
        mask[1, :, 1] = 0.0
        mask[1, 3, 1] = 1.0  # a channel seen once: no differences
    return values, mask


def _terms(values, mask, b, d, lag):
    x = values[b, mask[b, :, d] > 0, d]
    return x if lag == 0 else x[lag:] - x[:-lag]


@pytest.mark.parametrize("seed,lags,levels", [(0, (1, 2, 4), 8), (1, (1, 3), 5), (2, (2, 7, 40), 16)])
def test_thresholds_and_features_equal_an_explicit_loop(seed, lags, levels):
    values, mask = _batch(seed)
    B, _, D = values.shape
    net = PathPPV(D, lags, levels)
    net.fit([(values[:2], mask[:2]), (values[2:], mask[2:])])  # two batches, pooled
    q = (np.arange(levels) + 0.5) / levels
    for g, lag in enumerate((0,) + lags):
        for d in range(D):
            pooled = torch.cat([_terms(values, mask, b, d, lag) for b in range(B)]).numpy()
            want = np.quantile(pooled, q) if pooled.size else np.zeros(levels)
            assert np.allclose(net.thresholds[g, :, d].numpy(), want, atol=1e-12)
    got = net(values, mask)
    assert got.shape == (B, (1 + len(lags)) * levels * D) == (B, net.num_features)
    for b in range(B):
        row = []
        for g, lag in enumerate((0,) + lags):
            block = torch.zeros(levels, D, dtype=torch.float64)
            for d in range(D):
                y = _terms(values, mask, b, d, lag)
                if y.numel():
                    block[:, d] = (y.unsqueeze(0) > net.thresholds[g, :, d].unsqueeze(1)).double().mean(1)
            row.append(block.flatten())
        assert torch.allclose(got[b], torch.cat(row), atol=1e-12)
    assert got[0, : levels * D].view(levels, D)[:, 0].abs().sum() == 0  # the unseen channel: 0


@pytest.mark.parametrize("seed", range(3))
def test_a_dropped_point_moves_the_value_ppv_by_at_most_one_point(seed):
    """Value PPV over n observed points changes by at most 1 / (n - 1) when one point is dropped
    (a fill would invent a value there; these features only lose one term)."""
    values, mask = _batch(10 + seed, B=1, T=40, D=1)
    mask[:] = 1.0
    net = PathPPV(1, (1,), 12)
    net.fit([(values, mask)])
    full = net(values, mask)[0, :12]
    i = int(torch.randint(1, 39, (1,), generator=torch.Generator().manual_seed(seed)))
    thinned = mask.clone()
    thinned[0, i] = 0.0
    assert (net(values, thinned)[0, :12] - full).abs().max() <= 1 / 39 + 1e-12


def test_bad_settings_fail_clearly():
    with pytest.raises(ValueError, match="lags >= 1"):
        PathPPV(2, (0, 1))
    with pytest.raises(ValueError, match="levels >= 1"):
        PathPPV(2, (1,), 0)
