"""Depth-2 window log-signatures against a brute-force signature built by Chen's identity (segment
by segment, in float64, on random paths and random windows), the Lévy area of a regular polygon
(exact: its enclosed area), and the symmetric part of the second level being 1/2 S1 (x) S1."""

import math

import pytest
import torch

from odeflow.models.logsignature import interpolate_linear, logsignature_channels, window_logsignatures


def _chen_signature(points):
    """(S1 [C], S2 [C, C]) of the piecewise-linear path through points [K, C]: a segment d has the
    signature (d, d d^T / 2); Chen: S(a * b) = (a1 + b1, a2 + b2 + a1 b1^T)."""
    C = points.shape[1]
    s1, s2 = torch.zeros(C, dtype=torch.float64), torch.zeros(C, C, dtype=torch.float64)
    for k in range(points.shape[0] - 1):
        d = points[k + 1] - points[k]
        s2 = s2 + torch.outer(d, d) / 2 + torch.outer(s1, d)
        s1 = s1 + d
    return s1, s2


def _brute_force(times, x, edges):
    """Each window: the path at its edges and the data knots inside, then Chen's signature and its log."""
    B, _, C = x.shape
    i, j = torch.triu_indices(C, C, offset=1)
    out = torch.zeros(B, len(edges) - 1, logsignature_channels(C), dtype=torch.float64)
    for w in range(len(edges) - 1):
        a, b = float(edges[w]), float(edges[w + 1])
        inner = times[(times > a) & (times < b)]
        at = torch.cat([torch.tensor([a], dtype=torch.float64), inner, torch.tensor([b], dtype=torch.float64)])
        for n in range(B):
            pts = interpolate_linear(times, x[n : n + 1], at)[0]
            s1, s2 = _chen_signature(pts)
            log2 = s2 - torch.outer(s1, s1) / 2  # log(1 + S1 + S2) at depth 2
            assert torch.allclose(log2, -log2.T, atol=1e-12)  # only areas: symmetric part is S1 S1^T / 2
            out[n, w] = torch.cat([s1, log2[i, j]])
    return out


@pytest.mark.parametrize("seed", range(4))
def test_window_logsignatures_match_chen_identity(seed):
    g = torch.Generator().manual_seed(seed)
    T, B, C = 7 + seed * 3, 2, 2 + seed % 3
    times = torch.cumsum(torch.rand(T, generator=g, dtype=torch.float64) + 0.05, 0)
    x = torch.randn(B, T, C, generator=g, dtype=torch.float64)
    # edges that fall between knots, on a knot, before the first and after the last time
    inner = times[0] + (times[-1] - times[0]) * torch.sort(torch.rand(3, generator=g, dtype=torch.float64)).values
    edges = torch.cat([times[:1] - 0.3, inner, times[2:3], times[-1:] + 0.4])
    edges = torch.unique(edges)
    got = window_logsignatures(times, x, edges)
    assert got.shape == (B, len(edges) - 1, logsignature_channels(C))
    assert torch.allclose(got, _brute_force(times, x, edges), atol=1e-12)


@pytest.mark.parametrize("n", [3, 7, 40])
def test_area_of_a_regular_polygon(n):
    """Traversing a regular n-gon of circumradius 1 once, counter-clockwise: A_12 = its area
    n/2 sin(2 pi / n), increments 0; one window over the whole loop."""
    angle = torch.linspace(0, 2 * math.pi, n + 1, dtype=torch.float64)
    x = torch.stack([angle.cos(), angle.sin()], -1).unsqueeze(0)
    times = torch.arange(n + 1, dtype=torch.float64)
    ls = window_logsignatures(times, x, torch.tensor([0.0, float(n)], dtype=torch.float64))[0, 0]
    assert ls[:2].abs().max() < 1e-12
    assert abs(float(ls[2]) - n / 2 * math.sin(2 * math.pi / n)) < 1e-12


def test_windows_add_up_by_chen():
    """Splitting a window in two: increments add, the area gains 1/2 (a1 b2 - a2 b1) (Chen)."""
    g = torch.Generator().manual_seed(7)
    times = torch.linspace(0, 1, 11, dtype=torch.float64)
    x = torch.randn(1, 11, 2, generator=g, dtype=torch.float64)
    whole = window_logsignatures(times, x, torch.tensor([0.0, 1.0], dtype=torch.float64))[0, 0]
    a, b = window_logsignatures(times, x, torch.tensor([0.0, 0.37, 1.0], dtype=torch.float64))[0]
    assert torch.allclose(whole[:2], a[:2] + b[:2], atol=1e-12)
    assert abs(float(whole[2] - (a[2] + b[2] + 0.5 * (a[0] * b[1] - a[1] * b[0])))) < 1e-12


def test_constant_path_outside_the_data_and_bad_edges():
    times = torch.tensor([0.0, 1.0], dtype=torch.float64)
    x = torch.tensor([[[0.0, 1.0], [2.0, 3.0]]], dtype=torch.float64)
    ls = window_logsignatures(times, x, torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    assert torch.equal(ls, torch.zeros_like(ls))
    with pytest.raises(ValueError, match="strictly increasing"):
        window_logsignatures(times, x, torch.tensor([1.0, 1.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="times must be"):
        window_logsignatures(times, x[0], torch.tensor([0.0, 1.0], dtype=torch.float64))
