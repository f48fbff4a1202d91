import math

import pytest
import torch
import torch.nn.functional as F

from odeflow.flows.image_transforms import bits_per_dim, dequantize, logit_inverse, logit_transform, squeeze, unsqueeze


def test_dequantize_stays_in_each_pixel_bin():
    x = torch.randint(0, 256, (64, 1, 5, 5), dtype=torch.uint8)
    y = dequantize(x, torch.Generator().manual_seed(1), dtype=torch.float64)
    assert torch.equal(torch.floor(y * 256).to(torch.uint8), x)
    again = dequantize(x, torch.Generator().manual_seed(1), dtype=torch.float64)
    assert torch.equal(y, again)
    noise = y * 256 - x.double()
    assert abs(float(noise.mean()) - 0.5) < 0.03  # U[0, 1): mean 1/2 (1,600 draws, sd 0.007)


@pytest.mark.parametrize(
    "bad,error",
    [(torch.zeros(2, 3), TypeError), (torch.tensor([0, 256]), ValueError), (torch.tensor([-1, 3]), ValueError)],
)
def test_dequantize_rejects_bad_pixels(bad, error):
    with pytest.raises(error):
        dequantize(bad)


@pytest.mark.parametrize("alpha", [0.0, 1e-6, 0.05])
def test_logit_logdet_matches_autograd_jacobian(alpha):
    x = torch.rand(1, 1, 3, 3, dtype=torch.float64) * 0.9 + 0.05
    y, logdet = logit_transform(x, alpha)
    jac = torch.autograd.functional.jacobian(lambda v: logit_transform(v, alpha)[0].flatten(), x).reshape(9, 9)
    assert torch.allclose(logdet, torch.linalg.slogdet(jac)[1].reshape(1), rtol=1e-12, atol=1e-12)
    assert torch.allclose(logit_inverse(y, alpha), x, atol=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 0.05])
def test_bits_per_dim_of_uniform_data_is_eight_through_the_logit(alpha):
    """Dequantized uniform 8-bit data is U[0, 1]^D; after the logit s is U[alpha, 1 - alpha], so y has
    the logistic density divided by (1 - 2 alpha). log p(x) = log p(y) + log-det must then be 0 and
    the bits/dim exactly 8, the entropy of a uniform byte."""
    x = dequantize(torch.randint(0, 256, (16, 1, 4, 4)), dtype=torch.float64)
    y, logdet = logit_transform(x, alpha)
    log_py = (-y - 2 * F.softplus(-y) - math.log1p(-2 * alpha)).flatten(1).sum(dim=1)
    log_px = log_py + logdet
    assert torch.allclose(log_px, torch.zeros(16, dtype=torch.float64), atol=1e-9)
    assert torch.allclose(bits_per_dim(log_px, 16), torch.full((16,), 8.0, dtype=torch.float64))


def test_bits_per_dim_known_values():
    # a density 256^D concentrated on the right bins carries all the information: 0 bits/dim
    assert bits_per_dim(torch.tensor(10 * math.log(256)), 10).item() == pytest.approx(0.0, abs=1e-12)
    # density 2^D (half the unit cube) needs 7 bits per pixel
    assert bits_per_dim(5 * math.log(2), 5) == pytest.approx(7.0)
    with pytest.raises(ValueError):
        bits_per_dim(0.0, 0)


def test_squeeze_is_the_documented_permutation_and_unsqueeze_inverts_it():
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float64).reshape(2, 3, 4, 6)
    s = squeeze(x)
    assert s.shape == (2, 12, 2, 3)
    c, i, j, h, w = 1, 1, 0, 1, 2
    assert s[0, c * 4 + i * 2 + j, h, w] == x[0, c, 2 * h + i, 2 * w + j]
    assert torch.equal(unsqueeze(s), x)
    assert torch.equal(torch.sort(s.flatten())[0], torch.sort(x.flatten())[0])
    with pytest.raises(ValueError, match="divisible by 2"):
        squeeze(torch.zeros(1, 1, 3, 4))
