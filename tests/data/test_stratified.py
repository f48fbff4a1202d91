"""The stratified validation split: every class keeps its share (randomized label families)."""

from collections import Counter

import pytest
import torch

from odeflow.data.classification import held_out_count
from odeflow.data.stratified import stratified_holdout


@pytest.mark.parametrize("seed", range(12))
def test_each_class_gives_its_share(seed):
    g = torch.Generator().manual_seed(seed)
    n_classes = int(torch.randint(2, 8, (1,), generator=g))
    counts = torch.randint(1, 40, (n_classes,), generator=g).tolist()
    labels = [c for c, k in enumerate(counts) for _ in range(k)]
    labels = [labels[i] for i in torch.randperm(len(labels), generator=g).tolist()]
    fraction = float(0.05 + 0.4 * torch.rand(1, generator=g))
    keep, held = stratified_holdout(labels, fraction, seed=seed)
    n, k = len(labels), held_out_count(len(labels), fraction)
    assert sorted(keep.tolist() + held.tolist()) == list(range(n))  # a partition
    assert len(held) == k
    kept, given = Counter(labels[i] for i in keep.tolist()), Counter(labels[i] for i in held.tolist())
    for c, count in enumerate(counts):
        assert kept[c] >= 1  # no class leaves the training split
        assert abs(given[c] - k * count / n) < 1 + 1e-9  # proportional, up to rounding (k allowing)
        if count >= 2 and k >= n_classes:
            assert given[c] >= 1
    again_keep, again_held = stratified_holdout(labels, fraction, seed=seed)
    assert torch.equal(held, again_held) and torch.equal(keep, again_keep)


def test_bad_fraction_and_too_few():
    with pytest.raises(ValueError, match="fraction"):
        stratified_holdout([0, 1, 0, 1], 1.5)
    with pytest.raises(ValueError, match="at least 2"):
        stratified_holdout([0], 0.2)
