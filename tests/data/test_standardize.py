"""Per-series z-normalisation: every channel of every series has mean 0 and standard deviation 1
over its observed values (random families of levels and scales), unobserved entries stay 0, a
constant channel becomes 0, and the result does not depend on the other series."""

import torch

from odeflow.data.irregular import Series
from odeflow.data.standardize import standardize_each_series


def _series(seed, n=6):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        T = 5 + int(torch.randint(0, 10, (1,), generator=g))
        level = 100 * torch.randn(3, generator=g, dtype=torch.float64)
        scale = torch.exp(3 * torch.randn(3, generator=g, dtype=torch.float64))
        values = level + scale * torch.randn(T, 3, generator=g, dtype=torch.float64)
        mask = (torch.rand(T, 3, generator=g) < 0.7).to(torch.float64)
        mask[:2, :2] = 1.0
        mask[:, 2] = 0.0
        values = values * mask
        out.append(Series(torch.arange(T, dtype=torch.float64), values, mask, float(i % 2), f"s{i}"))
    return out


def test_each_channel_has_mean_0_and_std_1_over_its_observations():
    for seed in range(3):
        series = _series(seed)
        out = standardize_each_series(series)
        for s, o in zip(series, out):
            assert torch.equal(o.mask, s.mask) and torch.equal(o.times, s.times) and o.label == s.label
            for c in range(2):
                seen = o.values[s.mask[:, c] > 0, c]
                assert abs(float(seen.mean())) < 1e-10 and abs(float(seen.std()) - 1) < 1e-10
            assert torch.equal(o.values[s.mask == 0], torch.zeros_like(o.values[s.mask == 0]))
        alone = standardize_each_series(series[:1])[0]
        assert torch.equal(alone.values, out[0].values)


def test_a_constant_channel_becomes_zero():
    s = Series(torch.arange(4.0), torch.full((4, 1), 7.0), torch.ones(4, 1), 0.0, "c")
    assert torch.equal(standardize_each_series([s])[0].values, torch.zeros(4, 1))
