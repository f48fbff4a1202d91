"""Calibrated inclusion probabilities: stated bagging frequency -> measured frequency of true terms.

The search's bagged inclusion (odeflow.discover.model_search) is the fraction of block-bootstrap
resamples whose BIC choice holds a term. It is not a probability that the term is true: resamples
rescore only the models the search already fitted, so a wrong support every resample agrees on is
stated at 1, and terms stated at 0.5–0.95 were true far less often than stated. The remedy is the
recalibration of a classifier's scores (Zadrozny & Elkan, KDD 2002): on development instances with
known truth, the isotonic regression of "term is true" (0/1) on the stated inclusion p,

    ĝ = argmin over non-decreasing g of Σ_j w_j (y_j − g(p_j))²,

solved exactly by pool-adjacent-violators (Ayer et al., Ann. Math. Stat. 26, 1955); ĝ is a step
function on the pooled blocks, here interpolated linearly between the blocks' mean p (as
scikit-learn's IsotonicRegression), so it stays non-decreasing and within [0, 1]. Its reliability
is measured on instances and families not used to fit it (docs/dynamics.md, the table built by
experiments/discover_inclusion.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np


def pool_adjacent_violators(
    p: Sequence[float], y: Sequence[float], w: Optional[Sequence[float]] = None
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The weighted isotonic (non-decreasing) least-squares fit of y on p, as blocks: (mean p of each
    block, fitted value of each block, total weight of each block), p increasing. Equal p values are
    pooled first (one block each), so the fit is a function of p."""
    pa, ya = np.asarray(p, dtype=np.float64), np.asarray(y, dtype=np.float64)
    wa = np.ones_like(pa) if w is None else np.asarray(w, dtype=np.float64)
    if pa.shape != ya.shape or pa.shape != wa.shape or pa.ndim != 1 or len(pa) == 0:
        raise ValueError(f"need p, y, w of one equal length > 0; got shapes {pa.shape}, {ya.shape}, {wa.shape}")
    if (wa <= 0).any() or not (np.isfinite(pa).all() and np.isfinite(ya).all() and np.isfinite(wa).all()):
        raise ValueError("need finite p and y and positive finite weights w")
    keys, inverse = np.unique(pa, return_inverse=True)
    ws = np.bincount(inverse, weights=wa)
    ys = np.bincount(inverse, weights=wa * ya) / ws
    ps = keys.astype(np.float64)
    # stack of blocks: (weighted sum of p, weighted sum of y, weight)
    sp: list = []
    sy: list = []
    sw: list = []
    for a, b, c in zip(ps * ws, ys * ws, ws):
        sp.append(a)
        sy.append(b)
        sw.append(c)
        while len(sw) > 1 and sy[-2] / sw[-2] >= sy[-1] / sw[-1]:
            c2 = sw.pop()
            b2 = sy.pop()
            a2 = sp.pop()
            sp[-1] += a2
            sy[-1] += b2
            sw[-1] += c2
    weight = np.asarray(sw)
    return np.asarray(sp) / weight, np.asarray(sy) / weight, weight


@dataclass(frozen=True)
class InclusionCalibration:
    """g(p): linear between knots (x increasing, y non-decreasing, both in [0, 1]), constant past
    the end knots. `counts`: the development terms behind each knot (for the documentation)."""

    x: Tuple[float, ...]
    y: Tuple[float, ...]
    counts: Tuple[float, ...] = ()

    def __post_init__(self) -> None:
        x, y = np.asarray(self.x), np.asarray(self.y)
        if len(x) == 0 or x.shape != y.shape:
            raise ValueError(f"need knots x and y of one equal length > 0; got {len(x)} and {len(y)}")
        if (np.diff(x) <= 0).any() or (np.diff(y) < 0).any():
            raise ValueError("need knots x strictly increasing and y non-decreasing (a monotone map)")
        if x.min() < 0 or x.max() > 1 or y.min() < 0 or y.max() > 1:
            raise ValueError("need knots x and y within [0, 1]")

    def __call__(self, p: np.ndarray) -> np.ndarray:
        """The calibrated inclusion of stated inclusions p (any shape, values in [0, 1])."""
        p = np.asarray(p, dtype=np.float64)
        return np.interp(p, np.asarray(self.x), np.asarray(self.y))

    @staticmethod
    def fit(p: Sequence[float], true: Sequence[float], w: Optional[Sequence[float]] = None) -> InclusionCalibration:
        """The isotonic map of the module docstring from stated inclusions p and 0/1 truths (weights w:
        how many terms each row stands for)."""
        x, y, weight = pool_adjacent_violators(p, true, w)
        return InclusionCalibration(tuple(x.tolist()), tuple(y.tolist()), tuple(weight.tolist()))


DEVELOPMENT_FAMILIES = ("lotka-volterra", "van-der-pol", "duffing", "sir", "lorenz", "pendulum")
DEVELOPMENT_SEEDS = (201, 202, 203, 204)


def is_development(row: dict) -> bool:
    """Whether a run (experiments/discover_inclusion.py's row) is one the shipped map was fitted on."""
    return row["system"] in DEVELOPMENT_FAMILIES and row["seed"] in DEVELOPMENT_SEEDS


def inclusion_points(rows: Sequence[dict]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(stated p, true 0/1, weight) from runs with known truth (experiments/discover_inclusion.py's
    rows: `inclusion` and `true` for every term with p > 0; `zero_terms` terms at p = 0, of which
    `zero_true` are true, as one point of weight zero_terms)."""
    p, y, w = [], [], []
    for r in rows:
        p += list(r["inclusion"])
        y += [float(v) for v in r["true"]]
        w += [1.0] * len(r["inclusion"])
        if r["zero_terms"] > 0:
            p.append(0.0)
            y.append(r["zero_true"] / r["zero_terms"])
            w.append(float(r["zero_terms"]))
    return np.asarray(p, dtype=np.float64), np.asarray(y, dtype=np.float64), np.asarray(w, dtype=np.float64)


BINS = (0.0, 0.5, 0.8, 0.95, 1.0)


def reliability(
    p: np.ndarray, true: np.ndarray, w: np.ndarray, bins: Sequence[float] = BINS
) -> List[Tuple[float, float, float, float, float]]:
    """Per bin [lo, hi) of the stated values p (the first bin from 0 inclusive, the last to 1
    inclusive): (lo, hi, terms, true terms, mean stated), terms counted with weights w."""
    out = []
    for j, (lo, hi) in enumerate(zip(bins[:-1], bins[1:])):
        on = (p >= lo) & ((p < hi) if j < len(bins) - 2 else (p <= hi))
        n = float(w[on].sum())
        if n > 0:
            out.append((lo, hi, n, float((w * true)[on].sum()), float((w * p)[on].sum()) / n))
    return out


def reliability_rows(rows: Sequence[dict], calibration: Optional[InclusionCalibration] = None) -> List[str]:
    """docs/dynamics.md's reliability table rows: for the terms of `rows` with stated p > 0, per bin
    of the bagged p: terms, true, mean p, fraction true; then the same for the calibrated g(p) (the
    terms binned by the value written)."""
    p, y, w = inclusion_points(rows)
    on = p > 0
    raw = reliability(p[on], y[on], w[on])
    cal = reliability(calibration(p[on]), y[on], w[on]) if calibration is not None else []
    found = {lo: c for c, lo in zip(cal, [c[0] for c in cal])}
    out = []
    for lo, hi, n, k, mean in raw:
        cells = f"| {lo:.2f}–{hi:.2f} | {n:.0f} | {k:.0f} | {mean:.3f} | {k / n:.3f} |"
        if calibration is not None:
            c = found.get(lo)
            cells += " — | — | — | — |" if c is None else f" {c[2]:.0f} | {c[3]:.0f} | {c[4]:.3f} | {c[3] / c[2]:.3f} |"
        out.append(cells)
    return out


# Printed by `python experiments/discover_inclusion.py --map docs/dynamics/discover_inclusion.jsonl`:
# fitted on the development runs only (`is_development`: Lotka–Volterra, Van der Pol, Duffing, SIR,
# Lorenz and the pendulum, instances 201–204, 1% and 5% noise, additive and proportional; the rows of
# the other families and of instance 205 are its held-out set); tests/discover/test_calibration.py
# recomputes it from those rows.
INCLUSION_MAP = InclusionCalibration(
    x=(0.0007017543859649122, 0.11294117647058823, 0.3676923076923077, 0.7533333333333333, 0.82, 0.9974736842105264),
    y=(0.0022883295194508014, 0.11764705882352941, 0.3076923076923077, 0.3333333333333333, 0.8, 1.0),
    counts=(1311.0, 17.0, 26.0, 3.0, 5.0, 190.0),
)
