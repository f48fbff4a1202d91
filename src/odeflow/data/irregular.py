"""Irregularly-sampled series and batches on the union of their times (Rubanova et al. 2019).

A `Series` has its own times [n], values [n, D] and mask [n, D] (1 = observed; unobserved values
are stored as 0). `collate` puts several on the sorted union of their times: values and mask
[B, T, D], zero mask where a series has no value. `collate_rows` keeps each series on its own
times instead: times [B, N] (N = the longest series; shorter rows padded after their end, with
`lengths` [B] saying where each row ends), for models that solve every series on its own times
(`solve(..., per_sample=True)`). Task splits make two masks on that grid: what the encoder sees
(input) and what is scored (target).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor


@dataclass
class Series:
    """One series: times [n] strictly increasing, values [n, D], mask [n, D]; optional label."""

    times: Tensor
    values: Tensor
    mask: Tensor
    label: Optional[float] = None
    name: str = ""

    def __post_init__(self) -> None:
        n = self.times.shape[0] if self.times.dim() == 1 else -1
        if n < 1 or self.values.dim() != 2 or self.values.shape[0] != n or self.mask.shape != self.values.shape:
            raise ValueError(
                f"series {self.name!r}: times must be [n], values and mask [n, D]; got "
                f"{tuple(self.times.shape)}, {tuple(self.values.shape)}, {tuple(self.mask.shape)}"
            )
        if n > 1 and not bool((self.times[1:] > self.times[:-1]).all()):
            raise ValueError(f"series {self.name!r}: times must be strictly increasing")
        if not bool(torch.isfinite(self.values[self.mask > 0]).all()):
            raise ValueError(f"series {self.name!r}: an observed value is NaN or inf")
        self.values = torch.where(self.mask > 0, self.values, torch.zeros_like(self.values))


@dataclass
class IrregularBatch:
    """times [T] (the union, sorted) or [B, N] (each series its own times, `collate_rows`),
    values/mask [B, T or N, D], labels [B] (NaN where unknown); lengths [B]: how many of a row's
    times are its own (the rest is padding), None on the union grid."""

    times: Tensor
    values: Tensor
    mask: Tensor
    labels: Tensor
    lengths: Optional[Tensor] = None

    def to(self, device: torch.device) -> IrregularBatch:
        lengths = None if self.lengths is None else self.lengths.to(device)
        return IrregularBatch(
            self.times.to(device), self.values.to(device), self.mask.to(device), self.labels.to(device), lengths
        )


def collate(series: Sequence[Series]) -> IrregularBatch:
    """Put series on the union of their times (values and mask 0 where a series has no point)."""
    if len(series) == 0:
        raise ValueError("collate needs at least one series")
    dims = {s.values.shape[1] for s in series}
    if len(dims) != 1:
        raise ValueError(f"all series must have the same number of variables; got {sorted(dims)}")
    times = torch.unique(torch.cat([s.times for s in series]))  # sorted
    B, T, D = len(series), times.shape[0], dims.pop()
    dtype = series[0].values.dtype
    values = torch.zeros(B, T, D, dtype=dtype)
    mask = torch.zeros(B, T, D, dtype=dtype)
    for b, s in enumerate(series):
        idx = torch.searchsorted(times, s.times)
        values[b, idx] = s.values.to(dtype)
        mask[b, idx] = s.mask.to(dtype)
    labels = torch.tensor([float("nan") if s.label is None else float(s.label) for s in series], dtype=dtype)
    return IrregularBatch(times.to(dtype), values, mask, labels)


def collate_rows(series: Sequence[Series]) -> IrregularBatch:
    """Each series on its own times: times [B, N] (N = the longest), values and mask [B, N, D],
    lengths [B]. A shorter row's times go on after its end in steps of 1e-5 x max(its span, |its last time|, 1)
    (strictly increasing rows, as `solve(..., per_sample=True)` wants; mask 0 there)."""
    if len(series) == 0:
        raise ValueError("collate_rows needs at least one series")
    dims = {s.values.shape[1] for s in series}
    if len(dims) != 1:
        raise ValueError(f"all series must have the same number of variables; got {sorted(dims)}")
    B, N, D = len(series), max(s.times.shape[0] for s in series), dims.pop()
    dtype = series[0].values.dtype
    times = torch.zeros(B, N, dtype=torch.float64)
    values = torch.zeros(B, N, D, dtype=dtype)
    mask = torch.zeros(B, N, D, dtype=dtype)
    lengths = torch.tensor([s.times.shape[0] for s in series], dtype=torch.long)
    for b, s in enumerate(series):
        n = s.times.shape[0]
        own = s.times.to(torch.float64)
        gap = 1e-5 * max(float(own[-1] - own[0]), abs(float(own[-1])), 1.0)
        times[b, :n] = own
        times[b, n:] = own[-1] + gap * torch.arange(1, N - n + 1, dtype=torch.float64)
        values[b, :n] = s.values.to(dtype)
        mask[b, :n] = s.mask.to(dtype)
    labels = torch.tensor([float("nan") if s.label is None else float(s.label) for s in series], dtype=dtype)
    return IrregularBatch(times.to(dtype), values, mask, labels, lengths)


def split_interpolation(mask: Tensor, fraction: float, generator: torch.Generator) -> Tuple[Tensor, Tensor]:
    """Input mask: a random `fraction` of each series' observed time points (all their variables);
    target mask: the held-out points (the rest). Each series keeps at least one input point."""
    if not 0 < fraction <= 1:
        raise ValueError(f"observed fraction must be in (0, 1]; got {fraction}")
    point = mask.sum(-1) > 0  # [B, T]
    score = torch.rand(point.shape, generator=generator).to(mask.device)
    score = torch.where(point, score, torch.full_like(score, 2.0))
    n_keep = (point.sum(-1).to(torch.float64) * fraction).ceil().clamp(min=1).long()  # [B]
    rank = score.argsort(-1).argsort(-1)
    keep = point & (rank < n_keep[:, None].to(rank.device))
    inp = mask * keep[..., None].to(mask.dtype)
    return inp, mask - inp


def split_extrapolation(
    times: Tensor, mask: Tensor, t_split: float, fraction: float = 1.0, generator: Optional[torch.Generator] = None
) -> Tuple[Tensor, Tensor]:
    """Input: (a `fraction` of) the points at t < t_split; target: every point at t >= t_split
    (times [T] on the union grid or [B, N] per row)."""
    first = (times < t_split).to(mask.dtype)
    first = first[None, :, None] if times.dim() == 1 else first[:, :, None]
    inp, target = mask * first, mask * (1 - first)
    if fraction < 1:
        if generator is None:
            raise ValueError("split_extrapolation with fraction < 1 needs a torch.Generator")
        inp, _ = split_interpolation(inp, fraction, generator)
    return inp, target


@dataclass
class Normalizer:
    """Per-variable (x - mean) / std from the observed values of training series."""

    mean: Tensor
    std: Tensor

    @staticmethod
    def fit(series: Sequence[Series]) -> Normalizer:
        vals = torch.cat([s.values for s in series]).to(torch.float64)
        mask = torch.cat([s.mask for s in series]).to(torch.float64)
        count = mask.sum(0)
        mean = (vals * mask).sum(0) / count.clamp(min=1)
        var = (((vals - mean) * mask) ** 2).sum(0) / (count - 1).clamp(min=1)
        std = var.sqrt()
        std = torch.where(std > 0, std, torch.ones_like(std))  # constant or unseen variables
        return Normalizer(mean, std)

    def apply(self, series: Sequence[Series]) -> List[Series]:
        out = []
        for s in series:
            v = (s.values.to(torch.float64) - self.mean) / self.std
            out.append(Series(s.times, (v * s.mask).to(s.values.dtype), s.mask, s.label, s.name))
        return out
