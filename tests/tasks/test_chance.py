"""The chance-level warning of the classifiers (randomized label families)."""

import pytest
import torch

from odeflow.tasks.chance import binomial_tail, chance_warning, majority_share


@pytest.mark.parametrize("seed", range(6))
def test_majority_share_is_the_constant_predictors_best_accuracy(seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, int(torch.randint(2, 6, (1,), generator=g)), (50,), generator=g).tolist()
    best_constant = max(sum(y == c for y in labels) / len(labels) for c in set(labels))
    assert majority_share(labels) == pytest.approx(best_constant)


def test_warns_at_chance_and_not_above():
    val, test = [0, 0, 0, 1], [0, 1, 1, 1, 1]  # chance 0.75 and 0.8
    big = [0] * 40 + [1] * 60  # chance 0.6 on 100 series
    at_chance = chance_warning([0.5, 0.75, 0.75], val, 0.9, big, 2)
    assert at_chance is not None and "validation accuracy never rose above chance" in at_chance
    assert "test accuracy" not in at_chance
    below = chance_warning([1.0], val, 0.8, test, 2)
    assert below is not None and "test accuracy 0.800 is at or below chance (0.800)" in below
    five_right = chance_warning([0.5, 1.0], val, 1.0, test, 2)  # 5 of 5 against chance 0.8: p = 0.33
    assert (
        five_right is not None and "not distinguishable from chance (0.800): one-sided binomial p = 0.33" in five_right
    )
    assert chance_warning([0.5, 1.0], val, 0.75, big, 2) is None  # 75 of 100: p = 0.001
    with pytest.raises(ValueError, match="empty"):
        majority_share([])


@pytest.mark.parametrize("seed", range(4))
def test_binomial_tail_against_scipy(seed):
    stats = pytest.importorskip("scipy.stats")
    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, 400, (1,), generator=g))
    p = float(torch.rand(1, generator=g)) * 0.9 + 0.05
    for k in (0, 1, n // 3, n // 2, n, n + 1):
        assert binomial_tail(k, n, p) == pytest.approx(float(stats.binom.sf(k - 1, n, p)), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("seed", range(4))
def test_a_guesser_is_flagged_and_a_learner_is_not(seed):
    """Random label sets: a classifier right at the majority rate plus sampling noise (the one the
    archive's ArrowHead run hit: 0.400 against 0.394) is flagged; one 25 points above it is not."""
    g = torch.Generator().manual_seed(seed)
    k = int(torch.randint(2, 5, (1,), generator=g))
    labels = torch.randint(0, k, (int(torch.randint(150, 400, (1,), generator=g)),), generator=g).tolist()
    chance = majority_share(labels)
    near = chance_warning([], [], chance + 1.0 / len(labels), labels, k)
    assert near is not None and "not distinguishable from chance" in near
    assert chance_warning([], [], min(1.0, chance + 0.25), labels, k) is None
