"""Random-feature controlled differential equation classifier: an untrained CDE as a reservoir,
read out by ridge regression (randomised signatures: Cuchiero, Gonon, Grigoryeva, Ortega &
Teichmann 2021, "Discrete-time signatures and randomness in reservoir computing"; Compagnoni,
Scampicchio, Biggio, Orvieto, Hofmann & Teichmann 2023, "On the effectiveness of randomized
signatures as reservoir for learning rough dynamics").

The control X is the path of the neural CDE's channels (models.ncde.control_channels: time,
values filled linearly, scaled cumulative observation counts). The random state Z in R^R follows

    dZ = sum_l tanh(A_l Z + b_l) dX^l,     A_l ~ N(0, gain^2 / R),  b_l ~ N(0, 1),

solved by the log-ODE method (Morrill et al. 2021) of models.nrde: time is cut into windows,
each summarised by its depth-2 log-signature L_k (increments and Lévy areas, one random field per
log-signature channel), and one step of dZ/ds = sum_l tanh(A_l Z + b_l) L_k,l per window by
odeflow's solver (ODESolver; default one Euler step, Z_k+1 = Z_k + sum_l tanh(A_l Z_k + b_l) L_k,l:
the discrete-time randomised signature of Cuchiero et al. on log-signature increments). A *reading* (S, m) cuts time into S equal segments of the
training span, each of m windows. With S = 1 the reading sees the whole series from
Z = P X(t_0) (P ~ N(0, 1/C)); with S > 1, Z starts at 0 in every segment, so equal shapes give
equal features wherever they are (like a convolution), and the segment grid is laid `shifts`
times, moved by 1/shifts of a segment each time (overlapping segments, pooled together). Per
reading, over the windows that overlap each series' observed span:

    mean over segments of Z at the segment's end,  mean of Z over windows,
    proportion of positive values of Z over windows  (PPV, as in ROCKET),

every reading with its own random field; then the PPV features of the observed points themselves
(models.path_ppv: observed values and their differences over 1, 2, 4, 8, 16 observations against
16 training quantiles each). Features are float64; the readout is models.ridge (one-vs-rest
ridge on the two blocks, reservoir and path, with the path block's weight and alpha chosen by
leave-one-out error). The random weights are regenerated from the seed (they are not stored);
the path thresholds and the readout are.
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from ..solvers.stepping import FixedStep
from .logsignature import logsignature_channels, window_logsignatures
from .ncde import control_channels
from .ode_solver import ODESolver
from .path_ppv import DEFAULT_LAGS, PathPPV
from .ridge import RidgeFit, ridge_scores

Reading = Tuple[int, int]  # (segments over the training span, windows per segment)
MAX_FIELD_NUMBERS = 2**23  # the random field of one reading holds at most this many numbers (64 MiB)


def reservoir_units(units: int, logsig_channels: int) -> int:
    """`units`, fewer where the log-signature is wide (R^2 L <= MAX_FIELD_NUMBERS)."""
    return max(1, min(units, int(math.sqrt(MAX_FIELD_NUMBERS / logsig_channels))))


def default_readings(windows: int) -> Tuple[Reading, ...]:
    """Readings for `windows` log-signature windows over the training span: the whole series in
    `windows` steps, and local segments of 4 and of 8 windows ((1, W), (W/4, 4), (W/8, 8))."""
    out: List[Reading] = [(1, windows)]
    for m in (4, 8):
        if windows >= 2 * m:
            out.append((max(1, round(windows / m)), m))
    return tuple(out)


class RandomField(nn.Module):
    """g(s, Z) = sum_l tanh(A_l Z + b_l) L_l for a fixed drive L [B, L] (A stacked [R, L R])."""

    def __init__(self, weight: Tensor, bias: Tensor, drive: Tensor) -> None:
        super().__init__()
        self.weight, self.bias, self.drive = weight, bias, drive

    def forward(self, s: Tensor, z: Tensor) -> Tensor:
        h = torch.tanh(z @ self.weight + self.bias).view(z.shape[0], self.drive.shape[1], z.shape[1])
        return torch.einsum("blr,bl->br", h, self.drive)


class RandomCDEClassifier(nn.Module):
    """Random CDE features -> ridge scores [B, K] (call `set_readout` before predicting)."""

    count_scale: Tensor  # buffers kept in checkpoints: the layout and the readout
    origin: Tensor
    span: Tensor
    readout_weight: Tensor
    readout_bias: Tensor
    feature_mean: Tensor
    feature_scale: Tensor
    alpha: Tensor

    def __init__(
        self,
        input_dim: int,
        num_classes: int,
        readings: Sequence[Reading],
        span: float,
        origin: float = 0.0,
        units: int = 256,
        count_scale: float = 1.0,
        seed: int = 0,
        gain: float = 2.0,
        shifts: int = 4,
        solver: Optional[ODESolver] = None,
        path_lags: Sequence[int] = DEFAULT_LAGS,
        path_levels: int = 16,
    ) -> None:
        super().__init__()
        if not span > 0:
            raise ValueError(f"span must be a positive length of time (the training series' span); got {span}")
        if not readings or any(int(s) < 1 or int(m) < 1 for s, m in readings):
            raise ValueError(f"readings must be (segments >= 1, windows >= 1) pairs; got {list(readings)}")
        if units < 1 or num_classes < 2:
            raise ValueError(f"units must be >= 1 and num_classes >= 2; got {units}, {num_classes}")
        self.input_dim, self.num_classes = input_dim, num_classes
        self.readings = tuple((int(s), int(m)) for s, m in readings)
        channels = 1 + 2 * input_dim
        self.logsig_channels = logsignature_channels(channels)
        self.units = reservoir_units(units, self.logsig_channels)
        if shifts < 1:
            raise ValueError(f"shifts must be >= 1 (segment grids per reading); got {shifts}")
        self.seed, self.gain, self.shifts = seed, gain, shifts
        self.solver = solver or ODESolver("euler", FixedStep(1.0))
        g = torch.Generator().manual_seed(seed)
        R, L = self.units, self.logsig_channels
        for i in range(len(self.readings)):  # regenerated from the seed, never stored
            weight = torch.randn(R, L * R, generator=g, dtype=torch.float64) * (gain / math.sqrt(R))
            bias = torch.randn(L * R, generator=g, dtype=torch.float64)
            start = torch.randn(channels, R, generator=g, dtype=torch.float64) / math.sqrt(channels)
            if self.readings[i][0] > 1:  # local segments start at 0: the same shape anywhere, the same features
                start.zero_()
            for j, t in enumerate((weight, bias, start)):
                self.register_buffer(f"field{i}_{j}", t, persistent=False)
        self.path = PathPPV(input_dim, path_lags, path_levels)
        self.register_buffer("count_scale", torch.tensor(float(count_scale), dtype=torch.float64))
        self.register_buffer("origin", torch.tensor(float(origin), dtype=torch.float64))
        self.register_buffer("span", torch.tensor(float(span), dtype=torch.float64))
        F = self.num_features
        self.register_buffer("readout_weight", torch.zeros(F, num_classes, dtype=torch.float64))
        self.register_buffer("readout_bias", torch.zeros(num_classes, dtype=torch.float64))
        self.register_buffer("feature_mean", torch.zeros(F, dtype=torch.float64))
        self.register_buffer("feature_scale", torch.ones(F, dtype=torch.float64))
        self.register_buffer("alpha", torch.tensor(float("nan"), dtype=torch.float64))

    @property
    def reservoir_features(self) -> int:
        """The first block of features: 3 R per reading (the rest are the path's PPV)."""
        return 3 * self.units * len(self.readings)

    @property
    def num_features(self) -> int:
        return self.reservoir_features + self.path.num_features

    def field(self, i: int) -> Tuple[Tensor, Tensor, Tensor]:
        """(A stacked [R, L R], b [L R], P [C, R]) of reading i."""
        return getattr(self, f"field{i}_0"), getattr(self, f"field{i}_1"), getattr(self, f"field{i}_2")

    def edges(self, times: Tensor, reading: Reading, shift: float = 0.0) -> Tuple[Tensor, int]:
        """(window edges [S' m + 1] float64 covering times in whole segments, S' segments), the
        segments' grid moved back by `shift` of a segment."""
        segments, m = reading
        length = float(self.span) / segments
        o, t0, t1 = float(self.origin) - shift * length, float(times[0]), float(times[-1])
        first = math.floor((t0 - o) / length + 1e-9)
        last = max(first + 1, math.ceil((t1 - o) / length - 1e-9))
        k = torch.arange((last - first) * m + 1, dtype=torch.float64, device=times.device)
        return o + length * first + (length / m) * k, last - first

    def features(self, times: Tensor, values: Tensor, mask: Tensor, rows: int = 2048) -> Tensor:
        """[B, 3 R * readings + path features] float64 (times [T], the batch's union grid; values,
        mask [B, T, D]); fit the path's thresholds first (`path.fit`)."""
        if values.dim() != 3 or values.shape[-1] != self.input_dim:
            raise ValueError(f"values must be [B, T, {self.input_dim}]; got {tuple(values.shape)}")
        t = times.to(torch.float64)
        x = control_channels(t, values.to(torch.float64), mask, float(self.count_scale))
        seen = (mask > 0).any(-1)  # [B, T]
        idx = torch.arange(t.shape[0], device=t.device)
        first = t[torch.where(seen, idx, t.shape[0] - 1).amin(1)]
        last = t[torch.where(seen, idx, 0).amax(1)]
        out = [self._reading(i, t, x, first, last, rows) for i in range(len(self.readings))]
        return torch.cat(out + [self.path(values, mask)], -1)

    def _reading(self, i: int, t: Tensor, x: Tensor, first: Tensor, last: Tensor, rows: int) -> Tensor:
        shifts = self.shifts if self.readings[i][0] > 1 else 1
        parts = [self._shifted(i, t, x, first, last, rows, k / shifts) for k in range(shifts)]
        end, n_seg, total, n_win, positive = (torch.stack(p).sum(0) for p in zip(*parts))
        n_seg, n_win = n_seg.clamp_min(1), n_win.clamp_min(1)
        return torch.cat([end / n_seg, total / n_win, positive / n_win], -1)

    def _shifted(
        self, i: int, t: Tensor, x: Tensor, first: Tensor, last: Tensor, rows: int, shift: float
    ) -> Tuple[Tensor, ...]:
        weight, bias, start = self.field(i)
        edges, S = self.edges(t, self.readings[i], shift)
        m, (B, R) = self.readings[i][1], (x.shape[0], self.units)
        if t.shape[0] > 1:
            logsig = window_logsignatures(t, x, edges)  # [B, S m, L]
        else:
            logsig = x.new_zeros(B, S * m, self.logsig_channels)
        valid = (edges[:-1] < last.unsqueeze(1)) & (edges[1:] > first.unsqueeze(1))  # [B, S m]
        valid = valid | ((edges[:-1] <= first.unsqueeze(1)) & (edges[1:] >= last.unsqueeze(1)))  # one-point series
        starts = _path_at(t, x, edges[:-1:m])  # [B, S, C]
        drive, flat = logsig.reshape(B * S, m, -1), valid.reshape(B * S, m)
        z0 = (starts @ start).reshape(B * S, R)
        end, total, positive = torch.zeros_like(z0), torch.zeros_like(z0), torch.zeros_like(z0)
        live = flat.any(-1).nonzero().squeeze(1)  # (series, segment) rows inside a series' span; the rest are 0
        for a in range(0, live.shape[0], rows):  # `rows` rows at a time: bounded memory
            r = live[a : a + rows]
            end[r], total[r], positive[r] = self._run(weight, bias, z0[r], drive[r], flat[r])
        seg_valid = valid.view(B, S, m).any(-1).to(x.dtype)  # [B, S]
        return (
            end.view(B, S, R).sum(1),
            seg_valid.sum(1, keepdim=True),
            total.view(B, S, R).sum(1),
            valid.to(x.dtype).sum(1, keepdim=True),
            positive.view(B, S, R).sum(1),
        )

    def _run(self, weight: Tensor, bias: Tensor, z: Tensor, drive: Tensor, valid: Tensor) -> Tuple[Tensor, ...]:
        """One solver step per window from z [N, R]: (z after the last window, sum of z over valid
        windows, count of positive entries over valid windows)."""
        total, positive = torch.zeros_like(z), torch.zeros_like(z)
        unit = torch.tensor([0.0, 1.0], dtype=z.dtype, device=z.device)
        for k in range(drive.shape[1]):
            if bool(drive[:, k].any()):  # a constant path leaves Z where it is
                zs = self.solver(RandomField(weight, bias, drive[:, k]), z, unit)
                assert isinstance(zs, Tensor)
                z = zs[-1]
            w = valid[:, k].to(z.dtype).unsqueeze(-1)
            total = total + w * z
            positive = positive + w * (z > 0).to(z.dtype)
        return z, total, positive

    def set_readout(self, fit: RidgeFit) -> None:
        """Store a fitted ridge readout (models.ridge.fit_ridge_classifier on `features`)."""
        if fit.weight.shape != self.readout_weight.shape:
            raise ValueError(
                f"readout of shape {tuple(fit.weight.shape)}; this model needs {tuple(self.readout_weight.shape)}"
            )
        for name, value in (
            ("readout_weight", fit.weight),
            ("readout_bias", fit.bias),
            ("feature_mean", fit.mean),
            ("feature_scale", fit.scale),
        ):
            getattr(self, name).copy_(value)
        self.alpha.fill_(fit.alpha)

    def forward(self, times: Tensor, values: Tensor, mask: Tensor) -> Tensor:
        """Ridge decision values [B, K] (argmax: the class)."""
        if not bool(torch.isfinite(self.alpha)):
            raise ValueError("this random CDE has no readout yet; fit one (models.ridge) and call set_readout first")
        f = self.features(times, values, mask)
        return ridge_scores(self.readout_weight, self.readout_bias, self.feature_mean, self.feature_scale, f)


def _path_at(times: Tensor, x: Tensor, at: Tensor) -> Tensor:
    """The piecewise-linear path through x [B, T, C] at `at` [S] (constant beyond the ends)."""
    from .logsignature import interpolate_linear

    return interpolate_linear(times, x, at)
