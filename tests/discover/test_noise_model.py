import numpy as np
import pytest
import torch

from odeflow.discover.noise_model import KINDS, fit_variance_model, misfit
from odeflow.discover.observation_fit import fit_on_observations, segments_of


def _levels(rng, n):
    """A smooth signal crossing zero, as an oscillator's states do."""
    t = np.sort(rng.uniform(0, 10, n))
    return np.stack([2 * np.sin(t * rng.uniform(1, 2)), 1 + np.cos(t)], axis=1)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("kind", KINDS)
def test_the_noise_kind_and_its_size_are_recovered(kind, seed):
    # residuals drawn from a known model, N = 2000 per variable: the kind chosen by BIC is the
    # true one and the sizes come back within 15%
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    mu = _levels(rng, 2000)
    a = rng.uniform(0.01, 0.05, 2) ** 2 * (kind != "proportional")
    b = rng.uniform(0.01, 0.05, 2) ** 2 * (kind != "constant")
    r = np.sqrt(a + b * mu**2) * rng.standard_normal(mu.shape)
    vm = fit_variance_model(r, mu, mu.std(axis=0))
    assert vm.kinds == [kind, kind]
    for true, got in ((a, vm.a), (b, vm.b)):
        on = true > 0
        np.testing.assert_allclose(np.sqrt(got[on]), np.sqrt(true[on]), rtol=0.15)
    assert np.all(vm.bic[np.arange(2), [KINDS.index(k) for k in vm.kinds]] == vm.bic.min(axis=1))


def test_both_is_the_maximum_likelihood_of_its_family():
    # the fitted (a, b) of "both" is no worse than any point of a fine grid around it
    rng = np.random.default_rng(7)
    mu = _levels(rng, 500)
    r = np.sqrt(0.02**2 + 0.03**2 * mu**2) * rng.standard_normal(mu.shape)
    vm = fit_variance_model(r[:, :1], mu[:, :1], mu[:, :1].std(axis=0), kinds=["both"])
    q = np.maximum(mu[:, 0] ** 2, vm.floor[0] ** 2)

    def nll(a, b):
        v = a + b * q
        return np.sum(np.log(2 * np.pi * v) + r[:, 0] ** 2 / v)

    best = nll(vm.a[0], vm.b[0])
    for fa in np.linspace(0.8, 1.25, 10):
        for fb in np.linspace(0.8, 1.25, 10):
            assert best <= nll(vm.a[0] * fa, vm.b[0] * fb) + 1e-6


def test_bad_shapes_and_kinds_are_refused():
    with pytest.raises(ValueError, match="one shape"):
        fit_variance_model(np.zeros((5, 2)), np.zeros((5, 3)), np.ones(2))
    with pytest.raises(ValueError, match="variance kinds"):
        fit_variance_model(np.zeros((5, 2)), np.zeros((5, 2)), np.ones(2), kinds=["poisson"])


@pytest.mark.parametrize("seed", range(5))
def test_misfit_flags_correlated_residuals_and_passes_white_ones(seed):
    rng = np.random.default_rng(seed)
    mu = _levels(rng, 400)
    white = 0.02 * rng.standard_normal(mu.shape)
    vm = fit_variance_model(white, mu, mu.std(axis=0))
    assert misfit(vm, white, mu) == []
    # a smooth error the model does not explain (AR(1), coefficient 0.8)
    e = np.zeros_like(white)
    for j in range(1, len(e)):
        e[j] = 0.8 * e[j - 1] + white[j]
    lines = misfit(fit_variance_model(e, mu, mu.std(axis=0)), e, mu, variables=["x", "y"])
    assert any("serially correlated" in line for line in lines)
    # proportional noise scored under a constant model: the residual sizes follow the level
    prop = 0.05 * np.abs(mu) * rng.standard_normal(mu.shape)
    const = fit_variance_model(prop, mu, mu.std(axis=0), kinds=["constant"])
    assert any("correlated with the level" in line for line in misfit(const, prop, mu))


def test_weights_scale_the_residuals_and_leave_the_unweighted_fit_alone():
    # Segments.with_weights: residuals are (x̂ − x) w; weights 1/scale reproduce the default fit
    rng = np.random.default_rng(3)
    t = torch.linspace(0, 3, 40, dtype=torch.float64)
    x = torch.exp(-t)[:, None] * torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    x = x * (1 + 0.01 * torch.as_tensor(rng.standard_normal(x.shape)))
    seg = segments_of(t, x, torch.zeros(40, dtype=torch.long))
    powers = [(0, 0), (1, 0), (0, 1)]
    support = np.array([[False, True, False], [False, False, True]])
    start = np.array([[0.0, -0.9, 0.0], [0.0, 0.0, -1.1]])
    plain = fit_on_observations(powers, support, start, seg)
    same = fit_on_observations(powers, support, start, seg.with_weights(torch.ones(seg.target.shape) / seg.scale))
    np.testing.assert_allclose(same.coefficients, plain.coefficients, rtol=1e-10)
    raw, level = plain.raw_residuals(seg)
    np.testing.assert_allclose(raw, (seg.target.numpy() - level), atol=1e-14)
    np.testing.assert_allclose(-raw / seg.scale.numpy(), plain.residuals, rtol=1e-10)
    # relative weights on proportional noise: both decays recovered near their true rate 1
    w = 1 / (0.01 * level.clip(1e-3))
    prop = fit_on_observations(powers, support, start, seg.with_weights(torch.as_tensor(w)))
    np.testing.assert_allclose(prop.coefficients[support], [-1.0, -1.0], atol=0.03)
    assert prop.converged


@pytest.mark.slow  # ~25 s of CPU each
@pytest.mark.parametrize("kind", ["additive", "proportional"])
def test_standard_errors_match_the_spread_over_noise_draws(kind):
    # Monte Carlo: 40 noise draws on one randomized linear oscillator (true support, noise-model
    # weights as the search uses them): the coefficients' spread matches the mean reported standard
    # error within 30%, and the nominal 95% intervals cover the truth in >= 88% of coefficient-draws
    from odeflow.data.discovery_families import random_instance
    from odeflow.discover.model_search import variance_of
    from odeflow.discover.selection import polynomial_library, polynomial_terms

    inst = random_instance("damped-linear", 71 + (kind == "proportional"))
    powers = polynomial_terms(inst.variables, 1)
    _, terms = polynomial_library(np.zeros((1, 2)), inst.variables, 1)
    truth = inst.truth(terms)
    on = truth != 0
    coefs, errs = [], []
    for draw in range(40):
        t, x, _ = inst.observe(60, 0.03, 1000 + draw, kind=kind)
        seg = segments_of(t, x, torch.zeros(len(t), dtype=torch.long), substeps=4)
        f0 = fit_on_observations(powers, on, truth, seg)
        _, level = f0.raw_residuals(seg)
        seg = seg.with_weights(torch.as_tensor(variance_of(f0, seg).weights(level)))
        f = fit_on_observations(powers, on, f0.coefficients, seg, f0.starts)
        coefs.append(f.coefficients[on])
        errs.append(f.stderr[on])
    coefs, errs = np.array(coefs), np.array(errs)
    ratio = coefs.std(axis=0, ddof=1) / errs.mean(axis=0)
    assert np.all((ratio > 0.7) & (ratio < 1.3)), ratio
    assert np.mean(np.abs(coefs - truth[on]) <= 1.96 * errs) >= 0.88
