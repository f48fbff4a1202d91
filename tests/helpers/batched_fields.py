"""Fields with one parameter set per batch row (or 0-d parameters for one sample alone), shared
by the per-sample solver tests."""

from __future__ import annotations

import torch


def vdp(mu):
    """Van der Pol x'' = mu (1 - x^2) x' - x, one mu per row (or a 0-d mu for one sample)."""

    def f(t, y):
        x, v = y[..., 0], y[..., 1]
        return torch.stack([v, mu * (1 - x * x) * v - x], -1)

    return f


def lotka(p):
    """Lotka-Volterra x' = a x - b x y, y' = d x y - g y with p[..., :] = (a, b, d, g)."""

    def f(t, y):
        x, z = y[..., 0], y[..., 1]
        a, b, d, g = p.unbind(-1)
        return torch.stack([a * x - b * x * z, d * x * z - g * z], -1)

    return f


def forced_linear(a):
    """y' = A y + sin(t) (1, ..., 1): a random matrix per row, time-dependent (t is [B] or 0-d)."""

    def f(t, y):
        return (a @ y.unsqueeze(-1)).squeeze(-1) + torch.sin(t)[..., None]

    return f


def assert_row_gradients_match_differences(loss, mu, y0, g_mu, g_y0, component: int, rtol: float) -> None:
    """Central differences (eps 1e-6) of loss(mu, y0) in each row's mu and in component
    ``component`` of each row's y0, against the gradients g_mu [B] and g_y0 [B, d]."""
    eps, batch = 1e-6, mu.shape[0]
    with torch.no_grad():
        for b in range(batch):
            e = torch.zeros_like(mu)
            e[b] = eps
            fd = (loss(mu + e, y0) - loss(mu - e, y0)) / (2 * eps)
            torch.testing.assert_close(g_mu[b], fd, rtol=rtol, atol=1e-6)
            e2 = torch.zeros_like(y0)
            e2[b, component] = eps
            fd = (loss(mu, y0 + e2) - loss(mu, y0 - e2)) / (2 * eps)
            torch.testing.assert_close(g_y0[b, component], fd, rtol=rtol, atol=1e-6)
