"""Ridge readout: weights equal scikit-learn's Ridge on the standardised features, the closed-form
leave-one-out residuals equal explicit refits without each series, the chosen alpha is
RidgeClassifierCV's, and bad input fails clearly. Randomized problems, float64."""

import pytest
import torch

from odeflow.models.ridge import fit_ridge_classifier, loo_residuals, one_vs_rest, ridge_scores

linear_model = pytest.importorskip("sklearn.linear_model")  # at collection: its import is not a test's time


def _problem(seed, n, p, k):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, p, generator=g, dtype=torch.float64) * torch.rand(p, generator=g, dtype=torch.float64) * 3
    x = x + torch.randn(p, generator=g, dtype=torch.float64)
    w = torch.randn(p, k, generator=g, dtype=torch.float64)
    labels = (x @ w + 0.5 * torch.randn(n, k, generator=g, dtype=torch.float64)).argmax(-1)
    labels[:k] = torch.arange(k)  # every class present
    return x, labels


@pytest.mark.parametrize("seed,n,p,k", [(0, 30, 8, 2), (1, 20, 50, 3), (2, 40, 40, 4)])
def test_weights_equal_sklearn_ridge_on_standardised_features(seed, n, p, k):
    x, labels = _problem(seed, n, p, k)
    fit = fit_ridge_classifier(x, labels, k, alphas=(0.7,))
    z = ((x - x.mean(0)) / x.std(0, unbiased=False)).numpy()
    ref = linear_model.Ridge(alpha=0.7, fit_intercept=True, solver="svd").fit(z, one_vs_rest(labels, k).numpy())
    assert torch.allclose(fit.weight, torch.from_numpy(ref.coef_.T.copy()), atol=1e-10)
    assert torch.allclose(fit.bias, torch.from_numpy(ref.intercept_.copy()), atol=1e-10)
    assert torch.allclose(
        ridge_scores(fit.weight, fit.bias, fit.mean, fit.scale, x), torch.from_numpy(ref.predict(z)), atol=1e-10
    )


@pytest.mark.parametrize("seed,n,p", [(3, 15, 4), (4, 12, 30)])
def test_leave_one_out_residuals_equal_explicit_refits(seed, n, p):
    x, labels = _problem(seed, n, p, 3)
    y = one_vs_rest(labels, 3)
    alpha = 0.3 + seed
    got = loo_residuals(x, y, alpha)
    for i in range(n):
        keep = torch.arange(n) != i
        xk, yk = x[keep], y[keep]
        xm, ym = xk.mean(0), yk.mean(0)
        w = torch.linalg.solve((xk - xm).T @ (xk - xm) + alpha * torch.eye(p, dtype=x.dtype), (xk - xm).T @ (yk - ym))
        assert torch.allclose(got[i], y[i] - ((x[i] - xm) @ w + ym), atol=1e-10)


@pytest.mark.parametrize("seed", range(3))
def test_alpha_is_the_one_ridge_classifier_cv_picks(seed):
    x, labels = _problem(10 + seed, 40, 25, 3)
    alphas = (0.01, 0.1, 1.0, 10.0, 100.0)
    fit = fit_ridge_classifier(x, labels, 3, alphas)
    z = ((x - x.mean(0)) / x.std(0, unbiased=False)).numpy()
    assert fit.alpha == linear_model.RidgeClassifierCV(alphas=alphas).fit(z, labels.numpy()).alpha_
    assert fit.loo_errors.shape == (5,) and float(fit.loo_errors.min()) == float(
        fit.loo_errors[alphas.index(fit.alpha)]
    )


def test_bad_input_is_named():
    x, labels = _problem(0, 10, 3, 2)
    with pytest.raises(ValueError, match="at least 3 series"):
        fit_ridge_classifier(x[:2], labels[:2], 2)
    with pytest.raises(ValueError, match="features must be"):
        fit_ridge_classifier(x, labels[:5], 2)
    with pytest.raises(ValueError, match="alphas must be positive"):
        fit_ridge_classifier(x, labels, 2, alphas=(0.0, 1.0))
    x[1, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        fit_ridge_classifier(x, labels, 2)


@pytest.mark.parametrize("seed,n,p1,p2", [(20, 30, 12, 5), (21, 25, 40, 8)])
def test_two_blocks_equal_ridge_on_weighted_columns_and_the_least_loo_pair(seed, n, p1, p2):
    """Each ratio's fit is scikit-learn's Ridge on the standardised columns with the second block
    times r sqrt(p1 / p2) (r = 0 / inf: one block alone); the chosen (ratio, alpha) has the least
    mean squared leave-one-out residual over the grid; predictions come from the raw features."""
    x, labels = _problem(seed, n, p1 + p2, 3)
    y = one_vs_rest(labels, 3)
    z = (x - x.mean(0)) / x.std(0, unbiased=False)
    alphas, ratios = (0.1, 1.0, 10.0), (0.0, 0.5, 2.0, float("inf"))
    fit = fit_ridge_classifier(x, labels, 3, alphas, split=p1, ratios=ratios)
    errors = {}
    for r in ratios:
        w = torch.ones(p1 + p2, dtype=torch.float64)
        if r == float("inf"):
            w[:p1] = 0.0
        else:
            w[p1:] = r * (p1 / p2) ** 0.5
        for a in alphas:
            errors[(r, a)] = float(loo_residuals(z * w, y, a).pow(2).mean())
    r, a = min(errors, key=errors.get)
    assert (fit.ratio, fit.alpha) == (r, a)
    w = torch.ones(p1 + p2, dtype=torch.float64)
    w[:p1] = 0.0 if r == float("inf") else 1.0
    w[p1:] = 0.0 if r == 0.0 else (1.0 if r == float("inf") else r * (p1 / p2) ** 0.5)
    ref = linear_model.Ridge(alpha=a, solver="svd").fit((z * w).numpy(), y.numpy())
    got = ridge_scores(fit.weight, fit.bias, fit.mean, fit.scale, x)
    assert torch.allclose(got, torch.from_numpy(ref.predict((z * w).numpy())), atol=1e-9)


@pytest.mark.parametrize("ratio", [0.0, float("inf")])
def test_one_block_alone_equals_a_fit_on_that_block(ratio):
    x, labels = _problem(30, 30, 14, 3)
    fit = fit_ridge_classifier(x, labels, 3, (1.0,), split=9, ratios=(ratio,))
    part = x[:, :9] if ratio == 0.0 else x[:, 9:]
    alone = fit_ridge_classifier(part, labels, 3, (1.0,))
    got = ridge_scores(fit.weight, fit.bias, fit.mean, fit.scale, x)
    assert torch.allclose(got, ridge_scores(alone.weight, alone.bias, alone.mean, alone.scale, part), atol=1e-10)


def test_bad_blocks_fail_clearly():
    x, labels = _problem(31, 10, 6, 2)
    with pytest.raises(ValueError, match="split must cut"):
        fit_ridge_classifier(x, labels, 2, split=6)
    with pytest.raises(ValueError, match="ratios be >= 0"):
        fit_ridge_classifier(x, labels, 2, split=3, ratios=(-1.0,))
