"""Latent ODE: masks in the encoder, Poisson integral, shapes, both gradient modes."""

import pytest
import torch

from odeflow.models import LatentODE, disc_opt, elbo, kl_normal_standard, masked_gaussian_log_likelihood, opt_disc
from odeflow.models.elbo import poisson_log_likelihood


def _series(B=3, T=7, D=2):
    times = torch.cat([torch.zeros(1), torch.sort(torch.rand(T - 1)).values * 2 + 0.01]).double()
    values = torch.randn(B, T, D, dtype=torch.float64)
    mask = (torch.rand(B, T, D) < 0.6).double()
    mask[:, 0] = 1
    return times, values, mask


def _model(**kw):
    torch.manual_seed(3)
    kw.setdefault("decoder_solver", disc_opt("rk4", h=0.05))
    return LatentODE(2, latent_dim=3, rec_hidden=5, field_hidden=8, **kw).double()


@pytest.mark.parametrize("encoder", ["ode-rnn", "rnn"])
def test_posterior_ignores_masked_values(encoder):
    times, values, mask = _series()
    model = _model(encoder=encoder)
    mean, std = model.posterior(times, values, mask)
    assert mean.shape == std.shape == (3, 3) and bool((std > 0).all())
    junk = torch.where(mask > 0, values, torch.full_like(values, float("nan")))
    m2, s2 = model.posterior(times, junk, mask)
    torch.testing.assert_close((m2, s2), (mean, std), rtol=0, atol=0)
    values2 = values.clone()
    i = int(mask[0, 1:].sum(-1).nonzero()[0]) + 1
    values2[0, i] += torch.where(mask[0, i] > 0, 1.0, 0.0).double()
    assert not torch.allclose(model.posterior(times, values2, mask)[0][0], mean[0])


def test_forward_shapes_and_likelihood_ignores_masked_targets():
    times, values, mask = _series()
    model = _model()
    out = model(times, values, mask, n_samples=4)
    assert out.mean.shape == (4, 3, 7, 2) and out.z.shape == (7, 4, 3, 3) and out.z0.shape == (4, 3, 3)
    torch.testing.assert_close(out.z[0], out.z0)  # the decoder starts at t0 = times[0]
    ll = masked_gaussian_log_likelihood(values, out.mean, 0.1, mask)
    assert ll.shape == (4, 3)
    loss = -elbo(ll, kl_normal_standard(out.q_mean, out.q_std), 1.0)
    assert torch.isfinite(loss)


def test_mean_decoding_is_deterministic_and_t0_before_data():
    times, values, mask = _series()
    model = _model()
    a = model(times, values, mask, n_samples=2, sample=False)
    torch.testing.assert_close(a.mean[0], a.mean[1])
    later = times[3:]
    out = model(times, values, mask, n_samples=1, sample=False, predict_times=later)
    torch.testing.assert_close(out.mean[0], a.mean[0][:, 3:])  # decoded from t0 = 0 in both cases


def test_poisson_integral_matches_quadrature():
    times, values, mask = _series(B=2)
    model = _model(poisson=True, decoder_solver=disc_opt("rk4", h=0.01))
    out = model(times, values, mask, n_samples=1, sample=False)
    fine = torch.linspace(float(times[0]), float(times[-1]), 801, dtype=torch.float64)
    with torch.no_grad():
        _, z, log_lam, _ = model.decode(out.z0, fine)
    trapz = torch.trapezoid(log_lam.exp(), fine, dim=-2)  # [K, B, D]
    torch.testing.assert_close(out.integral, trapz, rtol=1e-5, atol=1e-7)
    ll = poisson_log_likelihood(out.log_intensity, out.integral, mask)
    assert ll.shape == (1, 2)


@pytest.mark.parametrize("poisson", [False, True])
def test_gradients_of_both_modes_agree(poisson):
    times, values, mask = _series(B=2, T=4)
    grads = []
    for solver in (disc_opt("dopri5", h=0.03), opt_disc("dopri5", h=0.03)):
        model = _model(poisson=poisson, decoder_solver=solver, encoder_solver=solver)
        torch.manual_seed(5)
        out = model(times, values, mask, n_samples=2)
        loss = -masked_gaussian_log_likelihood(values, out.mean, 0.5, mask).sum()
        if poisson:
            loss = loss - poisson_log_likelihood(out.log_intensity, out.integral, mask).sum()
        grads.append(torch.autograd.grad(loss, list(model.parameters()), allow_unused=True))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_unknown_encoder():
    with pytest.raises(ValueError, match="valid: ode-rnn, rnn"):
        LatentODE(2, encoder="lstm")
