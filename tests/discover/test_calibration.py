import json
from pathlib import Path

import numpy as np
import pytest

from odeflow.discover.calibration import (
    INCLUSION_MAP,
    InclusionCalibration,
    inclusion_points,
    is_development,
    pool_adjacent_violators,
    reliability_rows,
)

ROWS = Path(__file__).resolve().parents[2] / "docs" / "dynamics" / "discover_inclusion.jsonl"


def _per_unique_x(p, w, xs, weight, ys):
    """The block values of pool_adjacent_violators spread back onto the unique p values."""
    keys, inverse = np.unique(p, return_inverse=True)
    wk = np.bincount(inverse, weights=w)
    out, block, used = [], 0, 0.0
    for wi in wk:
        out.append(ys[block])
        used += wi
        if used >= weight[block] - 1e-9 * weight[block] and block < len(ys) - 1:
            block, used = block + 1, 0.0
    return keys, np.asarray(out)


@pytest.mark.parametrize("seed", range(6))
def test_pool_adjacent_violators_is_the_isotonic_least_squares_fit(seed):
    # the oracle: scikit-learn's isotonic regression on random weighted data with tied p values
    from sklearn.isotonic import IsotonicRegression

    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 80))
    p = np.round(rng.uniform(0, 1, n), 1)  # rounded: many ties
    y = (rng.uniform(0, 1, n) < p**2).astype(float)
    w = rng.uniform(0.5, 3.0, n)
    xs, ys, weight = pool_adjacent_violators(p, y, w)
    assert np.all(np.diff(xs) > 0) and np.all(np.diff(ys) > -1e-12)
    assert weight.sum() == pytest.approx(w.sum())
    keys, ours = _per_unique_x(p, w, xs, weight, ys)
    ref = IsotonicRegression(increasing=True).fit(p, y, sample_weight=w).predict(keys)
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    # the weighted mean is kept (a property of the least-squares projection onto monotone fits)
    assert (weight * ys).sum() == pytest.approx((w * y).sum())


def test_the_map_is_monotone_within_unit_interval_and_rejects_bad_knots():
    q = np.linspace(0, 1, 201)
    g = INCLUSION_MAP(q)
    assert np.all(np.diff(g) >= 0) and g.min() >= 0 and g.max() <= 1
    with pytest.raises(ValueError, match="monotone"):
        InclusionCalibration(x=(0.0, 0.5, 1.0), y=(0.1, 0.6, 0.4))
    with pytest.raises(ValueError, match="within"):
        InclusionCalibration(x=(0.0, 1.5), y=(0.0, 1.0))
    with pytest.raises(ValueError, match="equal length"):
        pool_adjacent_violators([0.1, 0.2], [1.0])


def test_shipped_map_is_refitted_from_the_development_rows():
    rows = [json.loads(line) for line in ROWS.read_text().splitlines() if line.strip()]
    dev = [r for r in rows if is_development(r)]
    held = [r for r in rows if not is_development(r)]
    assert len(dev) >= 40 and held  # the map is fitted on some runs and other runs are left out
    refit = InclusionCalibration.fit(*inclusion_points(dev))
    np.testing.assert_allclose(refit.x, INCLUSION_MAP.x, rtol=0, atol=1e-12)
    np.testing.assert_allclose(refit.y, INCLUSION_MAP.y, rtol=0, atol=1e-12)
    np.testing.assert_allclose(refit.counts, INCLUSION_MAP.counts, rtol=0, atol=1e-9)
    # on its own rows every knot is the fraction of true terms among the terms it pools
    p, y, w = inclusion_points(dev)
    assert (np.asarray(refit.counts) * np.asarray(refit.y)).sum() == pytest.approx((w * y).sum())


def test_the_documented_held_out_reliability_table_is_recomputed_from_the_rows():
    # docs/dynamics.md's before/after table: the held-out runs' terms binned by the bagged and by the
    # calibrated inclusion; every row must be what the stored rows and the shipped map give
    rows = [json.loads(line) for line in ROWS.read_text().splitlines() if line.strip()]
    table = reliability_rows([r for r in rows if not is_development(r)], INCLUSION_MAP)
    assert len(table) == 4
    doc = (ROWS.parents[1] / "dynamics.md").read_text()
    for line in table:
        assert line in doc, line
