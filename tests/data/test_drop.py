"""Drop masks: the exact share per series (time points) or per channel, seeded, and errors."""

import pytest
import torch

from odeflow.data.drop import drop_observations
from odeflow.data.irregular import Series


def _family(seed, n_series=6, dims=3):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n_series):
        n = int(torch.randint(5, 40, (1,), generator=g))
        times = torch.cumsum(torch.rand(n, generator=g) + 0.01, 0)
        values = torch.randn(n, dims, generator=g)
        mask = (torch.rand(n, dims, generator=g) < 0.8).float()
        mask[:, 0] = 1.0  # every row observed somewhere
        out.append(Series(times, values, mask, float(i % 2), f"s{i}"))
    return out


@pytest.mark.parametrize("share", [0.3, 0.5, 0.7])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_time_mode_drops_that_share_of_time_points(share, seed):
    series = _family(seed)
    dropped = drop_observations(series, share, "time", torch.Generator().manual_seed(seed))
    for s, d in zip(series, dropped):
        n = s.times.shape[0]
        assert d.times.shape[0] == n - min(n - 1, round(share * n))
        idx = torch.searchsorted(s.times, d.times)
        assert torch.equal(s.times[idx], d.times)  # kept points are original ones
        assert torch.equal(d.mask, s.mask[idx]) and torch.equal(d.values, s.values[idx])  # whole rows
        assert d.label == s.label and d.name == s.name


@pytest.mark.parametrize("share", [0.3, 0.5, 0.7])
@pytest.mark.parametrize("seed", [0, 3])
def test_channel_mode_drops_that_share_per_channel_independently(share, seed):
    series = _family(seed)
    dropped = drop_observations(series, share, "channel", torch.Generator().manual_seed(seed))
    differs = False
    for s, d in zip(series, dropped):
        counts = s.mask.sum(0)
        expect = torch.tensor([c - min(c - 1, round(share * c)) if c > 0 else 0 for c in counts.long().tolist()])
        assert torch.equal(d.mask.sum(0).long(), expect)
        assert bool((d.mask.sum(-1) > 0).all())  # empty time points removed
        idx = torch.searchsorted(s.times, d.times)
        assert bool((d.mask <= s.mask[idx]).all())  # only observed values survive
        assert torch.equal(d.values * d.mask, s.values[idx] * d.mask)
        if d.times.shape[0] > 1:
            differs |= not bool((d.mask == d.mask[:, :1]).all())  # channels masked independently
    assert differs


def test_seeded_and_seed_dependent():
    series = _family(5)
    a = drop_observations(series, 0.5, "channel", torch.Generator().manual_seed(7))
    b = drop_observations(series, 0.5, "channel", torch.Generator().manual_seed(7))
    c = drop_observations(series, 0.5, "channel", torch.Generator().manual_seed(8))
    assert all(torch.equal(x.mask, y.mask) and torch.equal(x.times, y.times) for x, y in zip(a, b))
    assert any(x.times.shape != y.times.shape or not torch.equal(x.mask, y.mask) for x, y in zip(a, c))


def test_zero_share_is_identity_and_one_point_is_kept():
    series = _family(2)
    assert drop_observations(series, 0.0) == series
    one = Series(torch.tensor([0.0]), torch.ones(1, 2), torch.ones(1, 2))
    assert drop_observations([one], 0.9, "time", torch.Generator().manual_seed(0))[0].times.shape[0] == 1


@pytest.mark.parametrize(
    "share,mode,gen,match",
    [
        (1.0, "time", True, "drop share"),
        (-0.1, "time", True, "drop share"),
        (0.5, "rows", True, "unknown drop mode"),
        (0.5, "time", False, "Generator"),
    ],
)
def test_bad_input(share, mode, gen, match):
    g = torch.Generator().manual_seed(0) if gen else None
    with pytest.raises(ValueError, match=match):
        drop_observations(_family(0), share, mode, g)
