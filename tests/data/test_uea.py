"""The UEA sets bundled with sktime, as odeflow series (official splits, no download)."""

import pytest
import torch

pytest.importorskip("sktime")

from odeflow.data.uea import load_uea  # noqa: E402


def test_basic_motions_and_japanese_vowels():
    train, test, classes = load_uea("basic-motions")
    assert (len(train), len(test)) == (40, 40) and len(classes) == 4
    s = train[0]
    assert s.values.shape == (100, 6) and bool((s.mask == 1).all())
    assert s.times[0] == 0 and abs(float(s.times[-1]) - 1.0) < 1e-6
    assert sorted({int(x.label) for x in test}) == [0, 1, 2, 3]
    train, test, classes = load_uea("japanese-vowels")
    assert (len(train), len(test)) == (270, 370) and classes == [str(i) for i in range(1, 10)]
    lengths = {x.times.shape[0] for x in train + test}
    assert min(lengths) >= 7 and max(lengths) <= 29 and len(lengths) > 5  # variable length
    assert all(x.values.shape[1] == 12 for x in train)
    step = train[0].times[1] - train[0].times[0]
    assert all(torch.allclose(x.times[1:] - x.times[:-1], step.expand(x.times.shape[0] - 1)) for x in train[:20])


def test_unknown_set():
    with pytest.raises(ValueError, match="unknown UEA set"):
        load_uea("gun-point")
