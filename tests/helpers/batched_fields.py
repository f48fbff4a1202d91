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
