"""Ridge classifier with the penalty chosen by exact leave-one-out error (the closed-form readout
of random-feature models; the rule of scikit-learn's RidgeClassifierCV, Rifkin & Lippert 2007).

Targets are the one-vs-rest codes Y in {-1, +1}^{n x K}. With X standardised (training mean and
standard deviation) and centred, Xc = U diag(s) V^T (thin SVD), Yc = Y - mean(Y):

    W(alpha) = V diag(s / (s^2 + alpha)) U^T Yc,       b = mean(Y) - mean(X) W,
    H(alpha) = U diag(s^2 / (s^2 + alpha)) U^T + 1/n   (the hat matrix, intercept included),
    LOO residual of series i:  (Y_i - Yhat_i) / (1 - H_ii),

and alpha is the one of `alphas` with the least mean squared leave-one-out residual (ties: the
smallest alpha). Prediction: argmax_k of x W + b.

Two blocks of features (`split`: the first `split` columns, then the rest): after
standardisation the second block is weighted by w = r sqrt(F_1 / F_2) for r in `ratios` (ridge
with penalty alpha on the first block and alpha / w^2 on the second; r = 0: the first block
alone, r = inf: the second alone); (r, alpha) is the pair of least leave-one-out error (ties:
the first ratio). The weights are folded into the stored scale (scale / w; inf where w = 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import Tensor

DEFAULT_ALPHAS = tuple(float(a) for a in torch.logspace(-3, 5, 17, dtype=torch.float64))
DEFAULT_RATIOS = (0.0, 0.3, 1.0, 3.0, math.inf)  # weights of a second block (0: the first alone; inf: the second)


@dataclass
class RidgeFit:
    weight: Tensor  # [F, K] on standardised features
    bias: Tensor  # [K]
    mean: Tensor  # [F] feature means (training)
    scale: Tensor  # [F] feature standard deviations (1 where constant)
    alpha: float
    loo_errors: Tensor  # [len(alphas)] mean squared leave-one-out residual per alpha (at `ratio`)
    ratio: Optional[float] = None  # the second block's chosen weight ratio (None: one block)


def one_vs_rest(labels: Tensor, num_classes: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """[n, K] with +1 at each label's class and -1 elsewhere."""
    y = -torch.ones(labels.shape[0], num_classes, dtype=dtype, device=labels.device)
    return y.scatter(1, labels.long().view(-1, 1), 1.0)


def loo_residuals(x: Tensor, y: Tensor, alpha: float) -> Tensor:
    """[n, K] leave-one-out residuals of ridge with intercept on centred features x [n, F]
    (closed form through the hat matrix, above)."""
    u, s, _ = torch.linalg.svd(x - x.mean(0), full_matrices=False)
    return _loo(u, s, y, alpha)


def _loo(u: Tensor, s: Tensor, y: Tensor, alpha: float) -> Tensor:
    n = y.shape[0]
    shrink = s**2 / (s**2 + alpha)
    yc = y - y.mean(0)
    fitted = u @ (shrink.unsqueeze(-1) * (u.T @ yc)) + y.mean(0)
    hat = (u**2 * shrink).sum(-1) + 1.0 / n
    return (y - fitted) / (1 - hat).unsqueeze(-1)


def fit_ridge_classifier(
    features: Tensor,
    labels: Tensor,
    num_classes: int,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    split: Optional[int] = None,
    ratios: Sequence[float] = DEFAULT_RATIOS,
) -> RidgeFit:
    """The readout of `features` [n, F] (float64 advised) for integer `labels` [n]; with `split`,
    two blocks of features weighted by the best of `ratios` (module docstring)."""
    if features.dim() != 2 or labels.shape != (features.shape[0],):
        raise ValueError(f"features must be [n, F] and labels [n]; got {tuple(features.shape)}, {tuple(labels.shape)}")
    if features.shape[0] < 3:
        raise ValueError(f"a ridge readout with leave-one-out alpha needs at least 3 series; got {features.shape[0]}")
    if len(alphas) == 0 or min(alphas) <= 0:
        raise ValueError(f"alphas must be positive numbers (e.g. 1e-3 ... 1e5); got {list(alphas)}")
    if split is not None and not (0 < split < features.shape[1] and len(ratios) > 0 and min(ratios) >= 0):
        raise ValueError(
            f"split must cut the {features.shape[1]} features into two non-empty blocks and ratios be >= 0; "
            f"got split {split}, ratios {list(ratios)}"
        )
    if not bool(torch.isfinite(features).all()):
        raise ValueError("the features hold NaN or inf; check the series for non-finite values")
    mean = features.mean(0)
    scale = features.std(0, unbiased=False)
    scale = torch.where(scale > 1e-12 * scale.max().clamp_min(1e-300), scale, torch.ones_like(scale))
    x = (features - mean) / scale
    y = one_vs_rest(labels, num_classes, x.dtype)
    best, k_best = None, 0
    for ratio in [None] if split is None else list(ratios):
        w = _block_weights(features.shape[1], split, ratio, x.dtype)
        u, s, vt = torch.linalg.svd(x * w, full_matrices=False)  # x is centred
        errors = torch.stack([_loo(u, s, y, a).pow(2).mean() for a in alphas])
        k = int(torch.argmin(errors))
        if best is None or float(errors[k]) < float(best[0][k_best]):
            best, k_best = (errors, ratio, w, u, s, vt), k
    assert best is not None
    errors, ratio, w, u, s, vt = best
    alpha = float(alphas[k_best])
    weight = vt.T @ ((s / (s**2 + alpha)).unsqueeze(-1) * (u.T @ (y - y.mean(0))))
    return RidgeFit(weight, y.mean(0), mean, scale / w, alpha, errors, ratio)


def _block_weights(F: int, split: Optional[int], ratio: Optional[float], dtype: torch.dtype) -> Tensor:
    """[F] column weights: 1 on the first block, r sqrt(F_1 / F_2) on the second (inf: 0 and 1)."""
    w = torch.ones(F, dtype=dtype)
    if split is None or ratio is None:
        return w
    if math.isinf(ratio):
        w[:split] = 0.0
    else:
        w[split:] = ratio * math.sqrt(split / (F - split))
    return w


def ridge_scores(fit_weight: Tensor, bias: Tensor, mean: Tensor, scale: Tensor, features: Tensor) -> Tensor:
    """[n, K] decision values x W + b of raw `features` [n, F]."""
    return ((features - mean) / scale) @ fit_weight + bias
