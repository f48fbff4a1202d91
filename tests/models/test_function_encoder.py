import pytest
import torch
from torch import nn

from odeflow.models import FunctionEncoderODE, finite_difference_velocities


class Mixed(nn.Module):
    def __init__(self, fields, row):
        super().__init__()
        self.fields, self.row = fields, row

    def forward(self, t, z):
        return sum(c * f(t, z) for c, f in zip(self.row, self.fields))


def make(k=4, seed=0):
    torch.manual_seed(seed)
    return FunctionEncoderODE(2, n_basis=k, hidden=(16,)).double()


def test_least_squares_recovers_combination_in_the_span():
    enc = make()
    z = torch.randn(3, 50, 2, dtype=torch.float64)  # 3 systems, 50 demonstration points each
    alpha = torch.tensor([[1.0, -2.0, 0.5, 0.0], [0.0, 0.3, 0.0, 1.2], [0.7, 0.7, -0.7, 0.1]], dtype=torch.float64)
    with torch.no_grad():
        v = torch.einsum("kspd,sk->spd", enc.basis_fields(z), alpha)
        est = enc.coefficients(z, v, method="least_squares", ridge=0.0)
    assert torch.allclose(est, alpha, atol=1e-8)


def test_inner_product_is_gram_times_alpha_and_exact_for_orthonormal_basis():
    enc = make()
    z = torch.randn(80, 2, dtype=torch.float64)
    alpha = torch.tensor([0.4, -1.0, 2.0, 0.3], dtype=torch.float64)
    with torch.no_grad():
        gram, _ = enc.inner_products(z, z)
        v = torch.einsum("kpd,k->pd", enc.basis_fields(z), alpha)
        b = enc.coefficients(z, v, method="inner")
        assert torch.allclose(b, gram @ alpha, atol=1e-10)
        # an orthonormal basis on these points: g_i = Σ_j (L⁻¹)_ij f_j with G = L Lᵀ
        w = torch.linalg.inv(torch.linalg.cholesky(gram))
        old = enc.basis
        enc.basis = nn.ModuleList(Mixed(old, row) for row in w)
        gram2, _ = enc.inner_products(z, z)
        assert torch.allclose(gram2, torch.eye(4, dtype=torch.float64), atol=1e-9)
        v = torch.einsum("kpd,k->pd", enc.basis_fields(z), alpha)
        assert torch.allclose(enc.coefficients(z, v, method="inner"), alpha, atol=1e-9)
        assert torch.allclose(enc.coefficients(z, v, method="least_squares", ridge=0.0), alpha, atol=1e-9)


def test_prediction_follows_the_combined_field():
    enc = make(k=2)
    alpha = torch.tensor([0.5, -1.5], dtype=torch.float64)
    z0 = torch.randn(3, 2, dtype=torch.float64)
    t = torch.linspace(0, 0.5, 6, dtype=torch.float64)
    with torch.no_grad():
        zs = enc.predict(z0, t, alpha, method="dopri5")
        v0 = enc.combined(z0, alpha)
        per_row = enc.combined(z0, alpha.expand(3, 2))
    assert zs.shape == (6, 3, 2)
    assert torch.allclose(v0, per_row)
    # initial slope is the combined field
    small = enc.predict(z0, torch.tensor([0.0, 1e-4], dtype=torch.float64), alpha, method="dopri5")
    assert torch.allclose((small[1] - small[0]) / 1e-4, v0, atol=1e-3)


def test_finite_differences_are_second_order_at_midpoints():
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    z = torch.stack([torch.sin(t), torch.cos(t)], dim=-1)
    errs = []
    for n in (11, 21):
        t = torch.linspace(0, 1, n, dtype=torch.float64)
        z = torch.stack([torch.sin(t), torch.cos(t)], dim=-1)
        mid, v = finite_difference_velocities(t, z)
        tm = 0.5 * (t[1:] + t[:-1])
        # velocity at the midpoint state: (cos, -sin) evaluated at the state, exact field is (y, -x)
        errs.append((v - torch.stack([mid[:, 1], -mid[:, 0]], -1)).abs().max())
        assert mid.shape == (n - 1, 2) and torch.isfinite(tm).all()
    assert errs[0] / errs[1] > 3.5


def test_gradients_reach_every_basis():
    enc = FunctionEncoderODE(2, n_basis=3, hidden=(8,))
    z = torch.randn(2, 20, 2)
    v = torch.randn(2, 20, 2)
    alpha = enc.coefficients(z, v)
    pred = enc.predict(z[:, 0], torch.linspace(0, 0.3, 4), alpha, step=None)
    pred.pow(2).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for f in enc.basis for p in f.layers[0].parameters())


@pytest.mark.parametrize(
    "call,match",
    [
        (
            lambda e: e.coefficients(torch.zeros(5, 2), torch.zeros(5, 2), method="fourier"),
            "unknown coefficient method",
        ),
        (lambda e: e.coefficients(torch.zeros(5, 2), torch.zeros(4, 2)), "must both be"),
        (lambda e: e.combined(torch.zeros(5, 2), torch.zeros(3)), "alpha must be"),
        (lambda e: e.basis_fields(torch.zeros(5, 3)), "dim=2"),
        (lambda e: finite_difference_velocities(torch.tensor([0.0, 0.0]), torch.zeros(2, 2)), "strictly increasing"),
    ],
)
def test_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call(FunctionEncoderODE(2, n_basis=2, hidden=(4,)))
