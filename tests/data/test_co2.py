"""The thinned CO2 windows (statsmodels data, offline)."""

import pytest
import torch

pytest.importorskip("statsmodels")
from odeflow.data import load_co2_windows  # noqa: E402


def test_windows_thinned_irregular_and_split_in_time():
    train, test = load_co2_windows(window_years=2.0, stride_years=0.5, keep=0.5, split_year=1990.0, seed=0)
    assert len(train) > 40 and len(test) > 10
    starts = lambda ss: [float(s.name.split("-")[1]) for s in ss]  # noqa: E731
    assert max(starts(train)) + 2.0 <= 1990.0 and min(starts(test)) >= 1992.0
    for s in train[:5] + test[:5]:
        assert float(s.times[0]) >= 0 and float(s.times[-1]) < 2.0
        assert 25 < s.times.shape[0] < 80  # about half of ~104 weeks
        gaps = s.times.diff()
        assert float(gaps.max()) > 1.5 * float(gaps.min())  # irregular
    resid = torch.cat([s.values for s in train])
    assert abs(float(resid.std()) - 1.0) < 0.05 and abs(float(resid.mean())) < 0.3
    # the same seed gives the same thinning, another seed a different one
    again, _ = load_co2_windows(seed=0)
    other, _ = load_co2_windows(seed=1)
    assert again[0].times.tolist() == train[0].times.tolist() != other[0].times.tolist()


def test_bad_arguments():
    with pytest.raises(ValueError, match="keep"):
        load_co2_windows(keep=0.0)
    with pytest.raises(ValueError, match="no training window"):
        load_co2_windows(split_year=1950.0)


def test_windows_share_one_weekly_grid():
    """A batch of windows has at most ~104 distinct times (the weekly grid), not one per point."""
    from odeflow.data import collate

    train, _ = load_co2_windows(seed=0)
    times = collate(train).times
    assert times.shape[0] <= 105
    weeks = times / (7 / 365.25)
    assert float((weeks - weeks.round()).abs().max()) < 1e-3
