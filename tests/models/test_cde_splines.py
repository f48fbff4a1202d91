"""Spline controls of the neural CDE, in float64 on random knots and data: they interpolate the data
at every knot, the Hermite path is C1 and the natural one C2 (one-sided limits at the knots and
finite differences of X, X'), the natural spline equals scipy's, and missing values are filled by
linear interpolation of the observed neighbours."""

import numpy as np
import pytest
import torch
from scipy.interpolate import CubicSpline

from odeflow.models.cde_splines import CubicPath, fill_missing


def _data(seed, B=3, n=9, C=2):
    g = torch.Generator().manual_seed(seed)
    knots = torch.cumsum(torch.rand(n, generator=g, dtype=torch.float64) * 0.9 + 0.1, 0)
    x = torch.randn(B, n, C, generator=g, dtype=torch.float64)
    return knots, x


@pytest.mark.parametrize("kind", ["hermite", "natural"])
@pytest.mark.parametrize("seed", range(4))
def test_interpolates_the_knots(kind, seed):
    knots, x = _data(seed)
    path = CubicPath(knots, x, kind)
    assert torch.allclose(path.evaluate(knots), x, atol=1e-12)
    for k in range(len(knots)):  # 0-d times too
        assert torch.allclose(path.evaluate(knots[k]), x[:, k], atol=1e-12)


@pytest.mark.parametrize("kind", ["hermite", "natural"])
@pytest.mark.parametrize("seed", range(4))
def test_derivatives_match_finite_differences(kind, seed):
    knots, x = _data(seed)
    path = CubicPath(knots, x, kind)
    g = torch.Generator().manual_seed(100 + seed)
    t = knots[0] + torch.rand(20, generator=g, dtype=torch.float64) * (knots[-1] - knots[0])
    eps = 1e-6
    fd = (path.evaluate(t + eps) - path.evaluate(t - eps)) / (2 * eps)
    assert torch.allclose(path.derivative(t), fd, atol=1e-6, rtol=1e-6)
    fd2 = (path.derivative(t + eps) - path.derivative(t - eps)) / (2 * eps)
    assert torch.allclose(path.second_derivative(t), fd2, atol=1e-5, rtol=1e-5)


def _one_sided(path, f, t, eps=1e-9):
    return f(t - eps), f(t + eps)


@pytest.mark.parametrize("seed", range(4))
def test_hermite_is_c1_with_backward_difference_slopes(seed):
    knots, x = _data(seed)
    path = CubicPath(knots, x, "hermite")
    inner = knots[1:-1]
    left, right = _one_sided(path, path.derivative, inner)
    assert torch.allclose(left, right, atol=1e-6)
    back = (x[:, 1:-1] - x[:, :-2]) / (knots[1:-1] - knots[:-2]).view(1, -1, 1)
    assert torch.allclose(path.derivative(inner), back, atol=1e-10)
    l2, r2 = _one_sided(path, path.second_derivative, inner)
    assert (l2 - r2).abs().max() > 1e-3  # only C1: the second derivative jumps (random data)


@pytest.mark.parametrize("seed", range(4))
def test_natural_is_c2_and_matches_scipy(seed):
    knots, x = _data(seed, n=7 + seed)
    path = CubicPath(knots, x, "natural")
    inner = knots[1:-1]
    for f in (path.evaluate, path.derivative, path.second_derivative):
        left, right = _one_sided(path, f, inner)
        assert torch.allclose(left, right, atol=1e-6)
    ends = torch.stack([knots[0], knots[-1]])
    assert torch.allclose(path.second_derivative(ends), torch.zeros(3, 2, 2, dtype=torch.float64), atol=1e-10)
    g = torch.Generator().manual_seed(7)
    t = knots[0] + torch.rand(50, generator=g, dtype=torch.float64) * (knots[-1] - knots[0])
    ref = CubicSpline(knots.numpy(), x.numpy(), axis=1, bc_type="natural")
    assert np.allclose(path.evaluate(t).numpy(), ref(t.numpy()), atol=1e-12)
    assert np.allclose(path.derivative(t).numpy(), ref(t.numpy(), 1), atol=1e-10)


def test_two_knots_give_the_chord():
    knots = torch.tensor([0.0, 2.0], dtype=torch.float64)
    x = torch.tensor([[[1.0], [5.0]]], dtype=torch.float64)
    for kind in ("hermite", "natural"):
        path = CubicPath(knots, x, kind)
        assert torch.allclose(
            path.evaluate(torch.tensor(0.5, dtype=torch.float64)), torch.tensor([[2.0]], dtype=torch.float64)
        )


def test_fill_missing_is_linear_between_observations():
    times = torch.tensor([0.0, 1.0, 3.0, 4.0, 6.0], dtype=torch.float64)
    values = torch.tensor([[[9.0, 1.0], [2.0, 7.0], [9.0, 9.0], [6.0, 9.0], [9.0, 9.0]]], dtype=torch.float64)
    mask = torch.tensor([[[0, 1], [1, 0], [0, 0], [1, 0], [0, 0]]], dtype=torch.float64)
    out = fill_missing(times, values, mask)
    mid = 2.0 + (3.0 - 1.0) / (4.0 - 1.0) * (6.0 - 2.0)  # t = 3 between (1, 2) and (4, 6)
    expect = torch.tensor([[[2.0, 1.0], [2.0, 1.0], [mid, 1.0], [6.0, 1.0], [6.0, 1.0]]], dtype=torch.float64)
    assert torch.allclose(out, expect, atol=1e-14)
    assert torch.equal(fill_missing(times, values, torch.zeros_like(mask)), torch.zeros_like(values))


def test_bad_knots_raise():
    with pytest.raises(ValueError, match="strictly increasing"):
        CubicPath(torch.tensor([0.0, 0.0, 1.0]), torch.zeros(1, 3, 1))
    with pytest.raises(ValueError, match="unknown spline"):
        CubicPath(torch.tensor([0.0, 1.0]), torch.zeros(1, 2, 1), "linear")  # type: ignore[arg-type]
