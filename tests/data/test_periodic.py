import math

import pytest
import torch

from odeflow.data import make_periodic


def test_periodic_toy_shapes_ranges_and_determinism():
    a = make_periodic(50, n_points=100, t_max=5.0, noise=0.0, seed=3, dtype=torch.float64)
    b = make_periodic(50, n_points=100, t_max=5.0, noise=0.0, seed=3, dtype=torch.float64)
    assert len(a) == 50 and a[0].times.shape == (100,) and a[0].values.shape == (100, 1)
    assert float(a[0].times[0]) == 0.0 and float(a[0].times[-1]) <= 5.0
    gaps = a[0].times.diff()
    assert bool((gaps > 0).all()) and float(gaps.std()) > 0.3 * float(gaps.mean())  # irregular
    torch.testing.assert_close(a[7].values, b[7].values)
    amps = torch.stack([s.values.abs().max() for s in a])
    assert float(amps.max()) <= 1.5 and float(amps.min()) > 0.3
    # a noiseless series is a sine: fit a sin + b cos at the drawn frequency is not known, but
    # its second differences follow x'' = -(2 pi f)^2 x with f in [0.2, 0.6]
    x = make_periodic(1, n_points=2000, noise=0.0, seed=1, dtype=torch.float64)[0]
    t, v = x.times, x.values[:, 0]
    h1, h2 = t[1:-1] - t[:-2], t[2:] - t[1:-1]
    d2 = 2 * (h1 * v[2:] - (h1 + h2) * v[1:-1] + h2 * v[:-2]) / (h1 * h2 * (h1 + h2))
    sel = v[1:-1].abs() > 0.3
    omega2 = -(d2[sel] / v[1:-1][sel]).median()
    assert (2 * math.pi * 0.2) ** 2 * 0.95 < float(omega2) < (2 * math.pi * 0.6) ** 2 * 1.05


def test_noise_level():
    clean = make_periodic(20, noise=0.0, seed=2, dtype=torch.float64)
    noisy = make_periodic(20, noise=0.1, seed=2, dtype=torch.float64)
    diff = torch.stack([n.values - c.values for n, c in zip(noisy, clean)])
    assert 0.09 < float(diff.std()) < 0.11


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_series"):
        make_periodic(0)
    with pytest.raises(ValueError, match="amplitude"):
        make_periodic(2, amplitude=(2.0, 1.0))
