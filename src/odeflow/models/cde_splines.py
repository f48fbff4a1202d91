"""Cubic spline controls X(t) for neural CDEs (Kidger, Morrill, Foster & Lyons 2020).

A path through data x_k at knots t_0 < ... < t_{n-1} (values [B, n, C]) is one cubic per interval,

    X(t) = a_k + b_k s + c_k s^2 + d_k s^3,   s = t - t_k,   t in [t_k, t_{k+1}],

with a_k = x_k, so X interpolates the data exactly at every knot. Two choices of the rest:

- Hermite cubic with backward differences (Morrill et al. 2021): the slope at knot t_k is the
  backward difference m_k = (x_k - x_{k-1}) / (t_k - t_{k-1}) (m_0 the first forward difference);
  on [t_k, t_{k+1}] the cubic has slope m_k at t_k and m_{k+1} at t_{k+1}: C1, and the piece on
  [t_k, t_{k+1}] depends only on x_{k-1}, x_k, x_{k+1}.
- natural cubic: C2 with X'' = 0 at both ends; the second derivatives M_k solve the tridiagonal
  system  D_{k-1} M_{k-1} + 2 (D_{k-1} + D_k) M_k + D_k M_{k+1} = 6 (q_k - q_{k-1}),
  D_k = t_{k+1} - t_k, q_k = (x_{k+1} - x_k) / D_k (Thomas algorithm, shared by batch and channels).

Missing values are filled first (`fill_missing`): linear interpolation between a channel's
neighbouring observations, held constant before the first and after the last one.
"""

from __future__ import annotations

from typing import Literal, Tuple

import torch
from torch import Tensor

SPLINES = ("hermite", "natural")
SplineKind = Literal["hermite", "natural"]


def fill_missing(times: Tensor, values: Tensor, mask: Tensor) -> Tensor:
    """values [B, T, C] with every unobserved entry (mask 0) replaced by the linear interpolation of
    its channel's observed neighbours in time (constant beyond the first / last; 0 if never seen)."""
    seen = mask > 0
    x = torch.where(seen, values, torch.zeros_like(values))
    T = times.shape[0]
    idx = torch.arange(T, device=times.device).view(1, T, 1).expand_as(x)
    prev = torch.where(seen, idx, torch.full_like(idx, -1)).cummax(dim=1).values
    nxt = torch.where(seen, idx, torch.full_like(idx, T)).flip(1).cummin(dim=1).values.flip(1)
    has_prev, has_next = prev >= 0, nxt < T
    p, n = prev.clamp(0, T - 1), nxt.clamp(0, T - 1)
    xp, xn = x.gather(1, p), x.gather(1, n)
    tt = times.to(x.dtype).view(1, T, 1)
    tp, tn = times.to(x.dtype)[p], times.to(x.dtype)[n]
    w = torch.where(n > p, (tt - tp) / (tn - tp).clamp_min(torch.finfo(x.dtype).tiny), torch.zeros_like(tt - tp))
    inner = xp + w * (xn - xp)
    out = torch.where(has_prev & has_next, inner, torch.where(has_prev, xp, torch.where(has_next, xn, x)))
    return torch.where(seen, x, out)


def _check(knots: Tensor, x: Tensor) -> None:
    if knots.dim() != 1 or x.dim() != 3 or x.shape[1] != knots.shape[0]:
        raise ValueError(f"knots must be [n] and values [B, n, C]; got {tuple(knots.shape)}, {tuple(x.shape)}")
    if knots.shape[0] < 2:
        raise ValueError(f"a spline needs at least 2 knots; got {knots.shape[0]}")
    if not bool((knots[1:] > knots[:-1]).all()):
        raise ValueError("spline knots must be strictly increasing")


def hermite_backward_coeffs(knots: Tensor, x: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """(a, b, c, d) [B, n-1, C] of the Hermite cubic with backward-difference slopes."""
    _check(knots, x)
    dt = (knots[1:] - knots[:-1]).to(x.dtype).view(1, -1, 1)
    q = (x[:, 1:] - x[:, :-1]) / dt  # [B, n-1, C] slope of each chord
    m_left = torch.cat([q[:, :1], q[:, :-1]], dim=1)  # slope at t_k: backward difference (m_0 = q_0)
    m_right = q  # slope at t_{k+1}: its backward difference, the chord of [t_k, t_{k+1}]
    a, b = x[:, :-1], m_left
    c = (3 * q - 2 * m_left - m_right) / dt
    d = (m_left + m_right - 2 * q) / dt**2
    return a, b, c, d


def natural_cubic_coeffs(knots: Tensor, x: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """(a, b, c, d) [B, n-1, C] of the natural cubic spline (X'' = 0 at t_0 and t_{n-1})."""
    _check(knots, x)
    n = knots.shape[0]
    dt = (knots[1:] - knots[:-1]).to(x.dtype)  # [n-1]
    q = (x[:, 1:] - x[:, :-1]) / dt.view(1, -1, 1)
    M = torch.zeros_like(x)  # second derivatives at the knots, M_0 = M_{n-1} = 0
    if n > 2:
        rhs = 6 * (q[:, 1:] - q[:, :-1])  # [B, n-2, C] rows k = 1 .. n-2
        diag = 2 * (dt[:-1] + dt[1:])
        lower, upper = dt[:-1], dt[1:]  # coefficients of M_{k-1}, M_{k+1}
        # Thomas algorithm: forward elimination, then back substitution (a Python loop over n).
        m = n - 2
        cp = [torch.zeros((), dtype=x.dtype)] * m
        dp = [rhs[:, 0]] * m
        denom = diag[0]
        cp[0], dp[0] = upper[0] / denom, rhs[:, 0] / denom
        for i in range(1, m):
            denom = diag[i] - lower[i] * cp[i - 1]
            cp[i] = upper[i] / denom
            dp[i] = (rhs[:, i] - lower[i] * dp[i - 1]) / denom
        sol = [dp[-1]] * m
        for i in range(m - 2, -1, -1):
            sol[i] = dp[i] - cp[i] * sol[i + 1]
        M = torch.cat(
            [x.new_zeros(x.shape[0], 1, x.shape[2]), torch.stack(sol, 1), x.new_zeros(x.shape[0], 1, x.shape[2])], 1
        )
    h = dt.view(1, -1, 1)
    a = x[:, :-1]
    b = q - h * (2 * M[:, :-1] + M[:, 1:]) / 6
    c = M[:, :-1] / 2
    d = (M[:, 1:] - M[:, :-1]) / (6 * h)
    return a, b, c, d


class CubicPath:
    """A piecewise cubic X(t) on knots [n] with coefficients [B, n-1, C]; outside [t_0, t_{n-1}]
    the first / last cubic is continued. ``kind``: 'hermite' or 'natural' (see the module)."""

    def __init__(self, knots: Tensor, x: Tensor, kind: SplineKind = "hermite") -> None:
        if kind not in SPLINES:
            raise ValueError(f"unknown spline {kind!r}; valid: {', '.join(SPLINES)}")
        make = hermite_backward_coeffs if kind == "hermite" else natural_cubic_coeffs
        self.knots = knots
        self.a, self.b, self.c, self.d = make(knots, x)

    def _piece(self, t: Tensor) -> Tuple[Tensor, Tensor]:
        """(interval index [..], s = t - t_k) for times t of any shape."""
        flat = t.reshape(-1).to(self.knots.dtype)
        k = (torch.searchsorted(self.knots, flat, right=True) - 1).clamp(0, self.knots.shape[0] - 2)
        return k, (flat - self.knots[k]).to(self.a.dtype)

    def _gather(self, coeff: Tensor, k: Tensor) -> Tensor:
        return coeff[:, k]  # [B, len(k), C]

    def evaluate(self, t: Tensor) -> Tensor:
        """X(t): [B, C] for a 0-d t, else [B, len(t), C]."""
        k, s = self._piece(t)
        s = s.view(1, -1, 1)
        a, b, c, d = (self._gather(v, k) for v in (self.a, self.b, self.c, self.d))
        out = a + s * (b + s * (c + s * d))
        return out[:, 0] if t.dim() == 0 else out

    def derivative(self, t: Tensor) -> Tensor:
        """dX/dt(t): [B, C] for a 0-d t, else [B, len(t), C]."""
        k, s = self._piece(t)
        s = s.view(1, -1, 1)
        b, c, d = (self._gather(v, k) for v in (self.b, self.c, self.d))
        out = b + s * (2 * c + 3 * s * d)
        return out[:, 0] if t.dim() == 0 else out

    def second_derivative(self, t: Tensor) -> Tensor:
        """d2X/dt2(t): [B, C] for a 0-d t, else [B, len(t), C]."""
        k, s = self._piece(t)
        s = s.view(1, -1, 1)
        c, d = self._gather(self.c, k), self._gather(self.d, k)
        out = 2 * c + 6 * s * d
        return out[:, 0] if t.dim() == 0 else out
