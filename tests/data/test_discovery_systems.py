import pytest
import torch

from odeflow.data import irregular_series, load_series_csv, write_series_csv
from odeflow.data.discovery_systems import KNOWN_SYSTEMS, true_coefficient_rows


@pytest.mark.parametrize("system", sorted(KNOWN_SYSTEMS))
def test_irregular_noisy_series(system):
    t, x, clean = irregular_series(system, n_obs=400, noise=0.05, seed=4)
    assert t[0] == 0 and (t[1:] > t[:-1]).all() and t[-1] <= KNOWN_SYSTEMS[system].t_end
    gaps = t[1:] - t[:-1]
    assert gaps.max() > 3 * gaps.min()  # irregular
    rel = ((x - clean) / clean.std(dim=0)).std().item()
    assert rel == pytest.approx(0.05, rel=0.15)
    # the clean series obeys the system
    f = KNOWN_SYSTEMS[system].field
    dt = gaps.unsqueeze(-1)
    fd = (clean[1:] - clean[:-1]) / dt
    mid = 0.5 * (clean[1:] + clean[:-1])
    assert ((fd - f(None, mid)).abs().max()) < 0.05


def test_csv_round_trip(tmp_path):
    t, x, _ = irregular_series("lotka-volterra", n_obs=20)
    path = write_series_csv(tmp_path / "s.csv", t, x, ["x", "y"])
    t2, x2, names = load_series_csv(path, dtype=torch.float64)
    assert names == ["x", "y"] and torch.equal(t2, t) and torch.equal(x2, x)


def test_true_coefficients_in_a_library():
    rows = true_coefficient_rows("lotka-volterra", ["1", "x", "y", "x y"])
    assert rows.tolist() == [[0.0, 1.0, 0.0, -0.5], [0.0, 0.0, -1.0, 0.5]]
    with pytest.raises(ValueError, match="not in the library"):
        true_coefficient_rows("cubic", ["1", "x"])
