"""Depth-2 log-signatures of a piecewise-linear path over windows (Morrill, Salvi, Kidger & Foster
2021, "Neural Rough Differential Equations for Long Time Series", §2).

For a path X: [a, b] -> R^C the depth-2 log-signature is (increments, Lévy areas):

    logsig(X)_i   = X_i(b) - X_i(a),
    logsig(X)_ij  = A_ij = 1/2 int_a^b (X_i(t) - X_i(a)) dX_j - (X_j(t) - X_j(a)) dX_i,   i < j

(the symmetric part of the second signature level is 1/2 logsig_i logsig_j, so only the areas
are new). For a piecewise-linear path with knots x_0 .. x_n, increments d_k = x_{k+1} - x_k and
r_k = x_k - x_0 (a straight segment adds no area of its own):

    A_ij = 1/2 sum_k (r_k,i d_k,j - r_k,j d_k,i).

Windows are cut at given times; each window's path is the linear interpolation through the knots
inside it and the path's values at its two edges.
"""

from __future__ import annotations

import torch
from torch import Tensor


def logsignature_channels(channels: int) -> int:
    """Size of the depth-2 log-signature of a path in R^channels: C + C (C - 1) / 2."""
    return channels + channels * (channels - 1) // 2


def interpolate_linear(times: Tensor, x: Tensor, at: Tensor) -> Tensor:
    """The piecewise-linear path through x [B, T, C] at times [T] (increasing), evaluated at
    `at` [S]; held constant before times[0] and after times[-1]."""
    if times.shape[0] == 1:
        return x[:, :1].expand(-1, at.shape[0], -1)
    tt = times.to(x.dtype)
    s = at.to(x.dtype).clamp(tt[0], tt[-1])
    k = (torch.searchsorted(tt, s, right=True) - 1).clamp(0, tt.shape[0] - 2)
    w = ((s - tt[k]) / (tt[k + 1] - tt[k])).view(1, -1, 1)
    return x[:, k] + w * (x[:, k + 1] - x[:, k])


def window_logsignatures(times: Tensor, x: Tensor, edges: Tensor) -> Tensor:
    """Depth-2 log-signatures [B, W, C + C(C-1)/2] of the piecewise-linear path through x [B, T, C]
    at times [T] over the W windows [edges[w], edges[w+1]] (edges [W+1], increasing). Order of the
    last dimension: the C increments, then the areas A_ij for i < j in row-major order. A window
    outside [times[0], times[-1]] sees a constant path (log-signature 0)."""
    if times.dim() != 1 or x.dim() != 3 or x.shape[1] != times.shape[0]:
        raise ValueError(f"times must be [T] and x [B, T, C]; got {tuple(times.shape)}, {tuple(x.shape)}")
    if edges.dim() != 1 or edges.shape[0] < 2 or not bool((edges[1:] > edges[:-1]).all()):
        raise ValueError(f"edges must be 1-D, strictly increasing, at least 2 times; got {edges.tolist()}")
    tt, ee = times.to(x.dtype), edges.to(x.dtype)
    inside = tt[(tt > ee[0]) & (tt < ee[-1])]
    grid = torch.unique(torch.cat([inside, ee]))  # sorted knots: the data's and every edge
    path = interpolate_linear(times, x, grid)  # [B, K, C]
    d = path[:, 1:] - path[:, :-1]  # [B, K-1, C] segment increments
    window = (torch.searchsorted(ee, grid[:-1], right=True) - 1).clamp(0, ee.shape[0] - 2)  # [K-1]
    first = torch.searchsorted(grid, ee[:-1])  # knot index where each window starts
    r = path[:, :-1] - path[:, first[window]]  # [B, K-1, C] position relative to the window's start
    W, C = ee.shape[0] - 1, x.shape[-1]
    inc = x.new_zeros(x.shape[0], W, C).index_add(1, window, d)
    outer = r.unsqueeze(-1) * d.unsqueeze(-2)  # [B, K-1, C, C]: r_i d_j
    i, j = torch.triu_indices(C, C, offset=1, device=x.device)
    area_terms = 0.5 * (outer[..., i, j] - outer[..., j, i])  # [B, K-1, C(C-1)/2]
    area = x.new_zeros(x.shape[0], W, i.shape[0]).index_add(1, window, area_terms)
    return torch.cat([inc, area], dim=-1)
