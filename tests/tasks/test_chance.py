"""The chance-level warning of the classifiers (randomized label families)."""

import pytest
import torch

from odeflow.tasks.chance import chance_warning, majority_share


@pytest.mark.parametrize("seed", range(6))
def test_majority_share_is_the_constant_predictors_best_accuracy(seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, int(torch.randint(2, 6, (1,), generator=g)), (50,), generator=g).tolist()
    best_constant = max(sum(y == c for y in labels) / len(labels) for c in set(labels))
    assert majority_share(labels) == pytest.approx(best_constant)


def test_warns_at_chance_and_not_above():
    val, test = [0, 0, 0, 1], [0, 1, 1, 1, 1]  # chance 0.75 and 0.8
    at_chance = chance_warning([0.5, 0.75, 0.75], val, 0.9, test, 2)
    assert at_chance is not None and "validation accuracy never rose above chance" in at_chance
    assert "test accuracy" not in at_chance
    below = chance_warning([1.0], val, 0.8, test, 2)
    assert below is not None and "test accuracy 0.800 is at or below chance (0.800)" in below
    assert chance_warning([0.5, 1.0], val, 0.81 + 0.1, test, 2) is None
    with pytest.raises(ValueError, match="empty"):
        majority_share([])
