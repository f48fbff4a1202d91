"""Synthetic PhysioNet-format records: parsed by the real loader, deterministic, realistic
shape, and smooth latent dynamics (what makes interpolation/extrapolation learnable)."""

import pytest
import torch

from odeflow.data import load_physionet
from odeflow.data.physionet import VARIABLES
from odeflow.data.physionet_synthetic import write_synthetic_physionet


@pytest.mark.parametrize("seed", [0, 7])
def test_records_parse_with_labels_and_realistic_size(tmp_path, seed):
    d = write_synthetic_physionet(tmp_path / "p", n_records=12, seed=seed)
    assert len(list((d / "set-a").glob("*.txt"))) == 12
    series, variables = load_physionet(d, quantization=None)
    assert variables == list(VARIABLES) and len(series) == 12
    assert all(s.label in (0.0, 1.0) for s in series)
    for s in series:
        assert float(s.times[0]) == 0.0 and float(s.times[-1]) < 48.0
        assert 150 <= float(s.mask.sum()) <= 800  # ~300-450 rows per record
        assert 40 <= len(s.times)  # distinct minutes of measurement
    hourly, _ = load_physionet(d, quantization=1.0)
    assert all(len(s.times) <= 49 for s in hourly)


def test_deterministic_and_seed_dependent(tmp_path):
    a = write_synthetic_physionet(tmp_path / "a", n_records=3, seed=1)
    b = write_synthetic_physionet(tmp_path / "b", n_records=3, seed=1)
    c = write_synthetic_physionet(tmp_path / "c", n_records=3, seed=2)
    read = lambda d: [p.read_text() for p in sorted((d / "set-a").glob("*.txt"))]  # noqa: E731
    assert read(a) == read(b) and read(a) != read(c)
    assert (a / "Outcomes-a.txt").read_text() == (b / "Outcomes-a.txt").read_text()


def test_heart_rate_is_smooth_in_time(tmp_path):
    """Consecutive hourly HR values are correlated (latent ODE dynamics + 0.3 noise); the same
    values in shuffled order are not."""
    d = write_synthetic_physionet(tmp_path / "p", n_records=20, seed=3)
    series, _ = load_physionet(d, quantization=1.0)
    j = VARIABLES.index("HR")
    g = torch.Generator().manual_seed(0)
    corr, shuffled = [], []
    for s in series:
        x = s.values[s.mask[:, j] > 0, j]
        if len(x) > 10 and float(x.std()) > 0:
            corr.append(float(torch.corrcoef(torch.stack([x[:-1], x[1:]]))[0, 1]))
            y = x[torch.randperm(len(x), generator=g)]
            shuffled.append(float(torch.corrcoef(torch.stack([y[:-1], y[1:]]))[0, 1]))
    assert len(corr) >= 15 and sum(corr) / len(corr) > 0.45
    assert abs(sum(shuffled) / len(shuffled)) < 0.15


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="n_records"):
        write_synthetic_physionet(tmp_path, n_records=0)
    with pytest.raises(ValueError, match="hours"):
        write_synthetic_physionet(tmp_path, n_records=2, hours=1)
