"""The classification sets bundled with sktime, as odeflow series (official splits, no download)."""

import pytest
import torch

pytest.importorskip("sktime")

from odeflow.data.uea import load_uea, sorted_classes  # noqa: E402
from odeflow.tasks.series_sets import BUNDLED  # noqa: E402

# short name: (train cases, test cases, channels, classes, shortest and longest case)
EXPECTED = {
    "arrow-head": (36, 175, 1, 3, 251, 251),
    "gunpoint": (50, 150, 1, 2, 150, 150),
    "italy-power-demand": (67, 1029, 1, 2, 24, 24),
    "osuleaf": (200, 242, 1, 6, 427, 427),
    "acsf1": (100, 100, 1, 10, 1460, 1460),
    "plaid": (537, 537, 1, 11, 100, 1344),
    "basic-motions": (40, 40, 6, 4, 100, 100),
    "japanese-vowels": (270, 370, 12, 9, 7, 29),
    "unit-test": (20, 22, 1, 2, 24, 24),
}


def test_the_table_names_every_bundled_set():
    assert set(EXPECTED) == set(BUNDLED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_bundled_set_loads_with_its_official_split(name):
    n_train, n_test, channels, n_classes, shortest, longest = EXPECTED[name]
    train, test, classes = load_uea(name)
    assert (len(train), len(test), len(classes)) == (n_train, n_test, n_classes)
    lengths = [s.times.shape[0] for s in train + test]
    assert min(lengths) == shortest and max(lengths) == longest
    assert all(s.values.shape == (s.times.shape[0], channels) == s.mask.shape for s in train + test)
    assert all(bool(torch.isfinite(s.values).all()) for s in train + test)
    assert sorted({int(s.label) for s in train}) == list(range(n_classes))  # every class trains
    assert {int(s.label) for s in test} <= set(range(n_classes))
    step = train[0].times[1] - train[0].times[0]
    for s in train[:10] + test[:10]:
        assert s.times[0] == 0 and torch.allclose(
            s.times[1:] - s.times[:-1], step.expand(s.times.shape[0] - 1), rtol=1e-3
        )
    assert max(float(s.times[-1]) for s in train) == pytest.approx(1.0, abs=1e-6)


def test_uea_prefix_takes_sktime_names_in_any_case():
    a, _, ca = load_uea("uea:GunPoint")
    b, _, cb = load_uea("UEA:gunpoint")
    assert ca == cb == ["1", "2"] and len(a) == len(b) == 50
    assert torch.equal(a[3].values, b[3].values)


def test_numeric_classes_sort_by_value():
    assert sorted_classes(["10", "2", "1", "0"]) == ["0", "1", "2", "10"]
    assert sorted_classes(["walking", "b", "a"]) == ["a", "b", "walking"]
    _, _, classes = load_uea("plaid")
    assert classes == [str(i) for i in range(11)]


@pytest.mark.parametrize("name", ["gun-point", "uea:Wafer", "uea:"])
def test_unknown_set(name):
    with pytest.raises(ValueError, match="unknown UEA set .*never downloads.*gunpoint \\(uea:GunPoint\\)"):
        load_uea(name)
