"""An offline real series for the latent-ODE demo: weekly Mauna Loa CO2 (statsmodels' `co2`,
1958-2001, 2,284 weeks, 59 missing), cut into windows and randomly thinned to irregular times.

Preprocessing without look-ahead: each window's trend is the least-squares line through the
`history_years` of weekly data before the window starts (whole years, so the seasonal cycle
averages out), extrapolated over the window and subtracted; the residual (mostly the seasonal
cycle) is divided by one scale, the std of the training residuals. Windows of `window_years`
(the first one after `history_years` of data) start every `stride_years`;
training windows end before `split_year`, test windows start at `split_year + window_years`
or later (no week in both). In each window every weekly value is kept with probability `keep`
(seeded), missing weeks are dropped, and time is in years since the window start, on the weekly
grid k * 7/365.25 (so a batch of windows has at most window_years * 52 distinct times).
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np
import torch

from .irregular import Series


def _co2_frame():
    try:
        from statsmodels.datasets import co2
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the co2 data set ships with statsmodels: pip install 'odeflow[latent]' (or pip install statsmodels)"
        ) from e
    return co2.load_pandas().data


def load_co2_windows(
    window_years: float = 2.0,
    stride_years: float = 0.5,
    keep: float = 0.5,
    split_year: float = 1990.0,
    history_years: float = 2.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> Tuple[List[Series], List[Series]]:
    """(train windows, test windows) of the detrended, standardised CO2 series."""
    if not 0 < keep <= 1:
        raise ValueError(f"keep (fraction of weeks kept) must be in (0, 1]; got {keep}")
    if window_years <= 0 or stride_years <= 0:
        raise ValueError(f"window_years and stride_years must be > 0; got {window_years}, {stride_years}")
    frame = _co2_frame()
    values = frame["co2"].to_numpy(dtype=np.float64)
    years = np.asarray(frame.index.year + (frame.index.day_of_year - 1) / 365.25, dtype=np.float64)
    ok = np.isfinite(values)
    week = 7.0 / 365.25  # the data are weekly: window times sit on one weekly grid
    n_win, stride, n_hist = (max(1, round(x / week)) for x in (window_years, stride_years, history_years))
    rng = np.random.default_rng(seed)
    windows = []
    for i0 in range(n_hist, len(values) - n_win + 1, stride):
        past = np.arange(i0 - n_hist, i0)[ok[i0 - n_hist : i0]]
        if len(past) < 10:
            raise ValueError(f"history_years={history_years} leaves {len(past)} weeks before {years[i0]:.2f}")
        slope, level = np.polyfit((past - i0) * week, values[past], 1)
        rows = np.arange(i0, i0 + n_win)
        rows = rows[ok[rows] & (rng.random(n_win) < keep)]
        if len(rows) >= 4:
            t = (rows - i0) * week
            windows.append((years[i0], years[i0] + n_win * week, t, values[rows] - (level + slope * t)))
    train_resid = [r for s0, e0, _, r in windows if e0 <= split_year]
    if not train_resid:
        raise ValueError(
            f"split_year={split_year} leaves no training window; the data span {years[0]:.1f}-{years[-1]:.1f}"
        )
    scale = float(np.concatenate(train_resid).std())
    train: List[Series] = []
    test: List[Series] = []
    for s0, e0, t, r in windows:
        tt = torch.tensor(t, dtype=torch.float64).to(dtype)
        v = torch.tensor(r / scale, dtype=torch.float64)[:, None].to(dtype)
        series = Series(tt, v, torch.ones_like(v), name=f"co2-{s0:.2f}")
        if e0 <= split_year:
            train.append(series)
        elif s0 >= split_year + window_years:
            test.append(series)
    return train, test
