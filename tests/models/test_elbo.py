"""ELBO pieces against hand computations."""

import math

import pytest
import torch

from odeflow.models import elbo, iwae, kl_normal_standard, kl_weight, masked_gaussian_log_likelihood, masked_mse
from odeflow.models.elbo import log_normal, poisson_log_likelihood


def test_gaussian_log_likelihood_by_hand():
    x = torch.tensor([[[1.0, 2.0], [3.0, float("nan")]]], dtype=torch.float64)  # [B=1, T=2, D=2]
    mean = torch.tensor([[[0.5, 2.0], [2.0, 7.0]]], dtype=torch.float64)
    mask = torch.tensor([[[1.0, 1.0], [1.0, 0.0]]], dtype=torch.float64)
    s = 0.5
    by_hand = sum(-0.5 * (r / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi) for r in (0.5, 0.0, 1.0))
    got = masked_gaussian_log_likelihood(x, mean, s, mask)
    assert got.shape == (1,)
    assert abs(float(got) - by_hand) < 1e-12
    assert abs(float(masked_mse(x, mean, mask)) - (0.25 + 0 + 1) / 3) < 1e-12


def test_masked_entries_carry_no_gradient_and_no_value():
    x = torch.randn(2, 3, 2, dtype=torch.float64)
    mean = torch.randn(2, 3, 2, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([1.0, 0.0]).expand(2, 3, 2).to(torch.float64)
    ll = masked_gaussian_log_likelihood(x, mean, 0.1, mask).sum()
    (g,) = torch.autograd.grad(ll, mean)
    assert bool((g[..., 1] == 0).all()) and bool((g[..., 0] != 0).all())
    x2 = x.clone()
    x2[..., 1] = 1e6
    assert float(masked_gaussian_log_likelihood(x2, mean, 0.1, mask).sum().detach()) == float(ll.detach())


def test_kl_by_hand_and_against_monte_carlo():
    mean = torch.tensor([[0.3, -1.0]], dtype=torch.float64)
    std = torch.tensor([[0.5, 2.0]], dtype=torch.float64)
    by_hand = sum(0.5 * (m * m + s * s - 1 - 2 * math.log(s)) for m, s in ((0.3, 0.5), (-1.0, 2.0)))
    assert abs(float(kl_normal_standard(mean, std)) - by_hand) < 1e-12
    z = mean + std * torch.randn(200000, 2, dtype=torch.float64)
    mc = (log_normal(z, mean, std) - log_normal(z, torch.zeros(2), torch.ones(2))).mean()
    assert abs(float(mc) - by_hand) < 0.02


def test_elbo_and_iwae_by_hand():
    log_lik = torch.tensor([[-1.0, -3.0], [-2.0, -5.0]], dtype=torch.float64)  # [K=2, B=2]
    kl = torch.tensor([0.5, 1.5], dtype=torch.float64)
    assert abs(float(elbo(log_lik, kl, 0.5)) - ((-1.5 - 0.25) + (-4.0 - 0.75)) / 2) < 1e-12
    mean = torch.zeros(2, 1, dtype=torch.float64)
    std = torch.ones(2, 1, dtype=torch.float64)
    z0 = torch.randn(2, 2, 1, dtype=torch.float64)
    # q = p: the log ratio vanishes, IWAE = log mean exp(log_lik)
    by_hand = (math.log((math.exp(-1) + math.exp(-2)) / 2) + math.log((math.exp(-3) + math.exp(-5)) / 2)) / 2
    assert abs(float(iwae(log_lik, z0, mean, std)) - by_hand) < 1e-12
    # with one sample and the exact KL in expectation, IWAE_1 is an unbiased ELBO estimate
    m, s = torch.tensor([[0.4]], dtype=torch.float64), torch.tensor([[0.7]], dtype=torch.float64)
    z = m + s * torch.randn(100000, 1, 1, dtype=torch.float64)
    ll = torch.zeros(100000, 1, dtype=torch.float64)
    est = torch.stack([iwae(ll[k : k + 1], z[k : k + 1], m, s) for k in range(0, 100000, 1000)]).mean()
    assert abs(float(est) + float(kl_normal_standard(m, s))) < 0.1


def test_iwae_is_at_least_elbo_for_the_same_samples():
    K, B, L = 8, 5, 3
    mean, std = torch.randn(B, L), torch.rand(B, L) + 0.5
    z0 = mean + std * torch.randn(K, B, L)
    log_lik = -torch.rand(K, B) * 10
    ratio = log_normal(z0, torch.zeros(L), torch.ones(L)) - log_normal(z0, mean, std)
    sample_elbo = (log_lik + ratio).mean()
    assert float(iwae(log_lik, z0, mean, std)) >= float(sample_elbo) - 1e-6


def test_poisson_term_by_hand():
    log_lam = torch.log(torch.tensor([[[2.0], [3.0], [4.0]]], dtype=torch.float64))  # [B=1,T=3,D=1]
    mask = torch.tensor([[[1.0], [0.0], [1.0]]], dtype=torch.float64)
    integral = torch.tensor([[5.0]], dtype=torch.float64)
    assert abs(float(poisson_log_likelihood(log_lam, integral, mask)) - (math.log(2) + math.log(4) - 5)) < 1e-12


@pytest.mark.parametrize("it,expected", [(0, 0.0), (9, 0.0), (10, 0.0), (11, 0.01), (110, 1 - 0.99**100)])
def test_kl_annealing(it, expected):
    assert abs(kl_weight(it, warmup=10) - expected) < 1e-12


def test_bad_arguments():
    with pytest.raises(ValueError, match="std"):
        masked_gaussian_log_likelihood(torch.zeros(1, 1, 1), torch.zeros(1, 1, 1), 0.0, torch.ones(1, 1, 1))
    with pytest.raises(ValueError, match="no entries"):
        masked_mse(torch.zeros(1, 1, 1), torch.zeros(1, 1, 1), torch.zeros(1, 1, 1))
    with pytest.raises(ValueError, match="rate"):
        kl_weight(3, rate=1.0)
