"""Union-of-times batches and the interpolation / extrapolation splits."""

import pytest
import torch

from odeflow.data import Normalizer, Series, collate, split_extrapolation, split_interpolation


def _s(times, vals, mask=None, label=None):
    v = torch.tensor(vals, dtype=torch.float64)
    return Series(
        torch.tensor(times, dtype=torch.float64),
        v,
        torch.ones_like(v) if mask is None else torch.tensor(mask, dtype=torch.float64),
        label=label,
    )


def test_collate_on_union_of_times():
    a = _s([0.0, 1.0], [[1.0, 2.0], [3.0, 4.0]], label=1)
    b = _s([0.5, 1.0, 2.0], [[5.0, 6.0], [7.0, 8.0], [9.0, 0.0]], [[1, 1], [1, 0], [0, 1]])
    batch = collate([a, b])
    assert batch.times.tolist() == [0.0, 0.5, 1.0, 2.0]
    assert batch.values[0].tolist() == [[1, 2], [0, 0], [3, 4], [0, 0]]
    assert batch.mask[0].tolist() == [[1, 1], [0, 0], [1, 1], [0, 0]]
    assert batch.values[1].tolist() == [[0, 0], [5, 6], [7, 0], [0, 0]]  # masked value stored as 0
    assert batch.mask[1].tolist() == [[0, 0], [1, 1], [1, 0], [0, 1]]
    assert batch.labels[0] == 1 and torch.isnan(batch.labels[1])


def test_series_validation():
    with pytest.raises(ValueError, match="strictly increasing"):
        _s([1.0, 0.0], [[1.0], [2.0]])
    with pytest.raises(ValueError, match="NaN or inf"):
        _s([0.0, 1.0], [[1.0], [float("nan")]])
    _s([0.0, 1.0], [[1.0], [float("nan")]], [[1], [0]])  # NaN where unobserved is fine
    with pytest.raises(ValueError, match="same number of variables"):
        collate([_s([0.0], [[1.0]]), _s([0.0], [[1.0, 2.0]])])


def test_interpolation_split_partitions_points():
    mask = (torch.rand(4, 20, 3) < 0.7).double()
    mask[:, 0] = 1
    inp, target = split_interpolation(mask, 0.3, torch.Generator().manual_seed(0))
    torch.testing.assert_close(inp + target, mask)
    assert bool(((inp * target) == 0).all())
    points = mask.sum(-1) > 0
    kept = (inp.sum(-1) > 0).sum(-1)
    expected = (points.sum(-1).double() * 0.3).ceil().long()
    assert kept.tolist() == expected.tolist()
    # a kept point keeps all of its observed variables
    keep_pt = inp.sum(-1) > 0
    torch.testing.assert_close(inp[keep_pt], mask[keep_pt])


def test_extrapolation_split():
    times = torch.linspace(0, 1, 11, dtype=torch.float64)
    mask = torch.ones(2, 11, 1, dtype=torch.float64)
    inp, target = split_extrapolation(times, mask, 0.5)
    assert inp[0, :, 0].tolist() == [1] * 5 + [0] * 6 and target[0, :, 0].tolist() == [0] * 5 + [1] * 6
    inp2, _ = split_extrapolation(times, mask, 0.5, 0.4, torch.Generator().manual_seed(1))
    assert inp2.sum(1).flatten().tolist() == [2.0, 2.0] and bool((inp2 <= inp).all())


def test_normalizer_uses_observed_values_only():
    a = _s([0.0, 1.0, 2.0], [[1.0, 100.0], [3.0, 5.0], [5.0, 7.0]], [[1, 0], [1, 1], [1, 1]])
    norm = Normalizer.fit([a])
    assert norm.mean.tolist() == [3.0, 6.0]
    assert abs(float(norm.std[0]) - 2.0) < 1e-12
    out = norm.apply([a])[0]
    assert out.values[0, 1] == 0 and abs(float(out.values[2, 0]) - 1.0) < 1e-12
