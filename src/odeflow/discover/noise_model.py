"""Per-variable observation-noise models for the fits on the observations.

Observation x_ji of variable i at row j, with noise-free value μ_ji (the fitted model's prediction):

    x_ji = μ_ji + σ_i(μ_ji) ε_ji,   ε ~ N(0, 1),   σ_i(μ)² = a_i + b_i max(μ², f_i²),

"constant" (b_i = 0: additive noise), "proportional" (a_i = 0: noise that scales with the signal)
or "both". f_i = 1e-3 std(x_i) keeps a proportional variance positive where μ crosses 0. Each is
fitted by maximum likelihood on the residuals of a fit, −2 log L = Σ_j [log 2π σ_j² + r_j²/σ_j²],
and the kind with the lowest BIC = −2 log L + p log N (p = 1, 1, 2 variance parameters) is chosen,
per variable. The fitted σ become fixed weights 1/σ̃ of the residuals, so that least squares on the
weighted residuals is the maximum-likelihood fit and the BIC on them is comparable across models
(Σ log σ̃² is the same for every model scored under the same weights; Mangan et al. 2017's BIC with
a known noise shape).

Checks that the model fits (`misfit`), on the standardized residuals z = r/σ: what is left of
heteroscedasticity (Spearman correlation of |z| with |μ|) and serial correlation of z in time order
(lag-1 autocorrelation; structure the model does not explain: a missing term, or rk4's own error);
each flagged past 5/√N (p ≈ 6e-7 two-sided under independence: a flag is rarely noise).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import numpy as np

KINDS = ("constant", "proportional", "both")
FLOOR = 1e-3  # level floor f_i, in data stds


@dataclass
class VarianceModel:
    """σ_i(μ)² = a_i + b_i max(μ², f_i²) per variable i, and how each kind scored."""

    kinds: List[str]
    a: np.ndarray  # [d] additive variance (data units²)
    b: np.ndarray  # [d] proportional variance (relative: b = (noise fraction)²)
    floor: np.ndarray  # [d] f_i
    bic: np.ndarray  # [d, 3] BIC of each kind in KINDS (the chosen kind has the lowest)
    problems: List[str] = field(default_factory=list)  # misfit findings, one line each

    def variance(self, level: np.ndarray) -> np.ndarray:
        """σ² [N, d] at noise-free levels μ [N, d]."""
        return self.a + self.b * np.maximum(np.asarray(level) ** 2, self.floor**2)

    def weights(self, level: np.ndarray) -> np.ndarray:
        """1/σ [N, d]: residual weights for least squares."""
        return 1.0 / np.sqrt(np.maximum(self.variance(level), 1e-300))

    @property
    def constant(self) -> bool:
        return all(k == "constant" for k in self.kinds)

    def describe(self, variables: Sequence[str]) -> List[str]:
        """One line per variable: 'x: proportional, sd 1.02% of |x|'."""
        out = []
        for i, v in enumerate(variables):
            parts = []
            if self.kinds[i] in ("constant", "both"):
                parts.append(f"sd {np.sqrt(self.a[i]):.3g}")
            if self.kinds[i] in ("proportional", "both"):
                parts.append(f"sd {100 * np.sqrt(self.b[i]):.3g}% of |{v}|")
            out.append(f"{v}: {self.kinds[i]}, " + " + ".join(parts))
        return out

    def as_dict(self, variables: Sequence[str]) -> dict:
        return {
            v: dict(
                kind=self.kinds[i],
                additive_sd=float(np.sqrt(self.a[i])),
                relative_sd=float(np.sqrt(self.b[i])),
                bic={k: float(self.bic[i, j]) for j, k in enumerate(KINDS)},
            )
            for i, v in enumerate(variables)
        }


def _nll(r2: np.ndarray, var: np.ndarray) -> float:
    var = np.maximum(var, 1e-300)
    return float(np.sum(np.log(2 * np.pi * var) + r2 / var))


def _fit_both(r2: np.ndarray, q: np.ndarray) -> tuple:
    """(a, b) >= 0 maximizing the likelihood of σ² = a + b q (scipy on log a, log b, from the
    one-sided fits scaled by 1/2)."""
    from scipy.optimize import minimize

    a0, b0 = max(float(r2.mean()), 1e-300), max(float((r2 / q).mean()), 1e-300)
    best = (float("inf"), a0, 0.0)
    for a_s, b_s in ((0.5 * a0, 0.5 * b0), (0.9 * a0, 0.1 * b0), (0.1 * a0, 0.9 * b0)):
        res = minimize(
            lambda u: _nll(r2, np.exp(u[0]) + np.exp(u[1]) * q),
            np.log([a_s, b_s]),
            method="Nelder-Mead",
            options=dict(xatol=1e-6, fatol=1e-8, maxiter=400),
        )
        if res.fun < best[0]:
            best = (float(res.fun), float(np.exp(res.x[0])), float(np.exp(res.x[1])))
    return best[1], best[2]


def fit_variance_model(
    residuals: np.ndarray,
    level: np.ndarray,
    scale: np.ndarray,
    kinds: Sequence[str] = KINDS,
) -> VarianceModel:
    """Per variable, the variance kind among `kinds` with the lowest BIC on raw residuals r [N, d]
    (observation − prediction) at predicted levels μ [N, d]; scale [d]: data std (for the floor)."""
    r = np.asarray(residuals, dtype=np.float64)
    mu = np.asarray(level, dtype=np.float64)
    if r.shape != mu.shape or r.ndim != 2:
        raise ValueError(f"need residuals and levels of one shape [N, d]; got {r.shape} and {mu.shape}")
    if not set(kinds) <= set(KINDS) or not kinds:
        raise ValueError(f"variance kinds must be among {KINDS}; got {list(kinds)}")
    n, d = r.shape
    floor = FLOOR * np.asarray(scale, dtype=np.float64)
    a, b = np.zeros(d), np.zeros(d)
    bic = np.full((d, 3), np.inf)
    chosen = []
    for i in range(d):
        r2 = r[:, i] ** 2
        q = np.maximum(mu[:, i] ** 2, floor[i] ** 2)
        fits = {}
        if "constant" in kinds:
            fits["constant"] = (float(r2.mean()), 0.0)
        if "proportional" in kinds:
            fits["proportional"] = (0.0, float((r2 / q).mean()))
        if "both" in kinds:
            fits["both"] = _fit_both(r2, q)
        for kind, (ai, bi) in fits.items():
            p = 2 if kind == "both" else 1
            bic[i, KINDS.index(kind)] = _nll(r2, ai + bi * q) + p * np.log(n)
        # lowest BIC; ties go to the simpler kind (KINDS order)
        best = min(fits, key=lambda k: (round(bic[i, KINDS.index(k)], 9), KINDS.index(k)))
        chosen.append(best)
        a[i], b[i] = fits[best]
    return VarianceModel(chosen, a, b, floor, bic)


def misfit(
    model: VarianceModel,
    residuals: np.ndarray,
    level: np.ndarray,
    order: Optional[np.ndarray] = None,
    variables: Optional[Sequence[str]] = None,
    limit: float = 5.0,
) -> List[str]:
    """Lines naming where the noise model does not describe the residuals [N, d] at levels [N, d]:
    standardized residuals still heteroscedastic, or serially correlated in time order (`order`:
    row order by time, default as given); each test flags past limit/√N."""
    from scipy.stats import spearmanr

    r = np.asarray(residuals, dtype=np.float64)
    mu = np.asarray(level, dtype=np.float64)
    n, d = r.shape
    names = list(variables) if variables is not None else [f"x{i}" for i in range(d)]
    z = r / np.sqrt(np.maximum(model.variance(mu), 1e-300))
    zs = z if order is None else z[np.asarray(order)]
    bound = limit / np.sqrt(n)
    out = []
    for i in range(d):
        if n < 10 or not np.isfinite(z[:, i]).all():
            continue
        rho = spearmanr(np.abs(z[:, i]), np.abs(mu[:, i])).statistic
        if np.isfinite(rho) and abs(rho) > bound:
            out.append(
                f"the {model.kinds[i]} noise model of {names[i]} leaves residual sizes correlated with the "
                f"level (Spearman {rho:+.2f})"
            )
        zc = zs[:, i] - zs[:, i].mean()
        den = float(zc @ zc)
        lag1 = float(zc[1:] @ zc[:-1]) / den if den > 0 else 0.0
        if lag1 > bound:
            out.append(
                f"the residuals of {names[i]} are serially correlated (lag-1 autocorrelation {lag1:.2f}): "
                "structure the model does not explain"
            )
    return out


def scale_drift(
    model: VarianceModel,
    residuals: np.ndarray,
    level: np.ndarray,
    variables: Optional[Sequence[str]] = None,
    factor: float = 2.0,
) -> List[str]:
    """Lines naming each variable whose residuals [N, d] (at levels [N, d]) are on average more than
    `factor` times smaller or larger in variance than `model` says: mean z² outside [1/factor, factor],
    z = r/σ(μ). A model fitted by maximum likelihood on these residuals has mean z² = 1 (a little
    less, ≈ 1 − p/N, on the residuals of a least-squares fit), so a drift says the noise model was
    estimated on a fit that is no longer the one scored (e.g. a poor starting model)."""
    r = np.asarray(residuals, dtype=np.float64)
    mu = np.asarray(level, dtype=np.float64)
    names = list(variables) if variables is not None else [f"x{i}" for i in range(r.shape[1])]
    z2 = (r**2 / np.maximum(model.variance(mu), 1e-300)).mean(axis=0)
    return [
        f"{names[i]}'s residuals have {z2[i]:.2g} times the variance its {model.kinds[i]} noise model gives"
        for i in range(r.shape[1])
        if np.isfinite(z2[i]) and not (1.0 / factor <= z2[i] <= factor)
    ]
