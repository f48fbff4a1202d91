"""Coefficient intervals of a model fitted on the observations: Gauss–Newton, widened by a
parametric bootstrap where it is wider.

The Gauss–Newton interval ĉ ± 1.96 se (odeflow.discover.observation_fit) linearizes the
trajectories in the coefficients and the segments' start states. Where that linearization or the
noise level's estimate is off (nonlinear dependence on a coefficient, many start states fitted
beside few coefficients, the bias this brings), the interval is too narrow. The parametric
bootstrap (Efron & Tibshirani, *An Introduction to the Bootstrap*, 1993, ch. 6 and 13) sees both:
B data sets are drawn from the fitted model,

    x*_j = x̂_j + σ̂_j ε_j,   ε_j ~ N(0, I),

x̂_j the fitted prediction at observation j and σ̂_j its noise level (the fitted noise model's,
times each variable's residual scale, RSS_i / (N − p/d) in weighted units, as the Gauss–Newton
variance uses); the chosen support is refitted to each (Levenberg–Marquardt from the fit), and the
bias-corrected normal interval is

    ĉ − b ± 1.96 s,   b = mean(c*) − ĉ,  s = sd(c*).

The interval reported is the union of the two, so the bootstrap only ever widens the Gauss–Newton
one. Its cost is B refits of one model.

resample="wild" draws the noise from the fit's own residuals instead (the wild bootstrap, Wu, Ann.
Statist. 14, 1986; Liu, Ann. Statist. 16, 1988): x*_j = x̂_j + r_j v_j √(N/(N − p/d)), v_j = ±1 with
probability 1/2 each, which keeps whatever heteroscedasticity or misfit the residuals r_j have and
the noise model does not describe. The pipeline uses the parametric draw; the wild one is the
comparison of docs/dynamics.md.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence, Tuple, Union

import numpy as np
import torch

from .library import Library
from .noise_model import KINDS, fit_variance_model
from .observation_fit import ObservationFit, Segments, fit_on_observations

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Intervals:
    lower: np.ndarray  # [d, m] (0 off the support)
    upper: np.ndarray
    boot_sd: np.ndarray  # [d, m] bootstrap standard deviation (0 without bootstrap)
    boot_bias: np.ndarray  # [d, m] mean(c*) − ĉ
    draws: int  # bootstrap refits that stayed finite


def noise_sd(fit: ObservationFit, seg: Segments) -> np.ndarray:
    """σ̂ [N, d] in data units: 1/weight times each variable's weighted residual scale (degrees of
    freedom as the Gauss–Newton variance: N − (coefficients + start states)/d)."""
    n, d = fit.residuals.shape
    p = int(fit.support.sum()) + fit.starts.numel()
    scale = np.sqrt((fit.residuals**2).sum(axis=0) / max(n - p / d, 1.0))
    w = np.broadcast_to(seg.w.detach().numpy(), fit.residuals.shape)
    return scale[None, :] / w


RESAMPLE = ("parametric", "wild")


def bootstrap_noise(fit: ObservationFit, seg: Segments, rng: np.random.Generator, resample: str) -> np.ndarray:
    """One draw of simulated observation noise [N, d] in data units: "parametric" σ̂_j ε_j, or "wild"
    r_j v_j √(N/(N − p/d)) (the fit's own raw residuals r_j with random signs v_j = ±1)."""
    if resample == "parametric":
        sd = noise_sd(fit, seg)
        return sd * rng.standard_normal(sd.shape)
    raw, _ = fit.raw_residuals(seg)
    n, d = raw.shape
    p = int(fit.support.sum()) + fit.starts.numel()
    return raw * np.sqrt(n / max(n - p / d, 1.0)) * rng.choice([-1.0, 1.0], size=raw.shape)


def coefficient_intervals(
    library: Union[Library, Sequence[Tuple[int, ...]]],
    fit: ObservationFit,
    seg: Segments,
    draws: int = 0,
    seed: int = 0,
    resample: str = "parametric",
    refit_noise: bool = False,
    kinds: Sequence[str] = KINDS,
) -> Intervals:
    """Gauss–Newton ±1.96 se (draws = 0), or its union with the bootstrap's bias-corrected normal
    interval over `draws` refits, the noise drawn as `resample` says (module docstring).
    refit_noise: each replicate repeats the noise model's estimation as the search does (a fit
    under the given weights, the noise model (`kinds`) fitted to its residuals, the weighted refit)
    instead of keeping the fit's weights."""
    if resample not in RESAMPLE:
        raise ValueError(f"resample must be one of {RESAMPLE}; got {resample!r}")
    gn_lo = fit.coefficients - Z95 * fit.stderr
    gn_hi = fit.coefficients + Z95 * fit.stderr
    zero = np.zeros_like(fit.coefficients)
    if draws <= 0 or not np.isfinite(fit.bic) or not fit.support.any():
        return Intervals(gn_lo, gn_hi, zero, zero, 0)
    _, pred = fit.raw_residuals(seg)
    rng = np.random.default_rng(seed)
    got = []
    for _ in range(draws):
        target = torch.as_tensor(pred + bootstrap_noise(fit, seg, rng, resample), dtype=torch.float64)
        star = replace(seg, target=target)
        again = fit_on_observations(library, fit.support, fit.coefficients, star, fit.starts)
        if refit_noise and np.isfinite(again.bic):
            raw, level = again.raw_residuals(star)
            model = fit_variance_model(raw, level, star.scale.numpy(), kinds)
            star = star.with_weights(model.weights(level))
            again = fit_on_observations(library, fit.support, again.coefficients, star, again.starts)
        if np.isfinite(again.bic):
            got.append(again.coefficients)
    if len(got) < 2:
        return Intervals(gn_lo, gn_hi, zero, zero, len(got))
    c = np.stack(got)
    bias = np.where(fit.support, c.mean(axis=0) - fit.coefficients, 0.0)
    spread = np.where(fit.support, c.std(axis=0, ddof=1), 0.0)
    lo = fit.coefficients - bias - Z95 * spread
    hi = fit.coefficients - bias + Z95 * spread
    return Intervals(np.minimum(gn_lo, lo), np.maximum(gn_hi, hi), spread, bias, len(got))


def coverage(lower: np.ndarray, upper: np.ndarray, truth: np.ndarray) -> Tuple[int, int]:
    """(true coefficients inside their interval, true coefficients): on the truth's support."""
    on = truth != 0
    return int(((lower[on] <= truth[on]) & (truth[on] <= upper[on])).sum()), int(on.sum())
