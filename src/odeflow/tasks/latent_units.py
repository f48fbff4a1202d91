"""The latent task's results in the data's own units: the model sees standardized values
((x - mean) / std per variable, from the training series) at times t * time_scale; a user reads
times, observations and predictions as they were in the file, under their column names."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import torch
from torch import Tensor, nn

from ..data import Normalizer, Series
from .latent_setup import LatentSettings, make_task_batch, predict

EVAL_SEED_OFFSET = 7919  # the evaluation's input/held-out masks use seed + this (as the figures do)


@dataclass
class DataUnits:
    """Back from model units: time t / time_scale + time_origin, value x * std + mean."""

    normalizer: Optional[Normalizer] = None
    time_scale: float = 1.0
    time_origin: float = 0.0

    def times(self, t: Tensor) -> Tensor:
        return t.double() / self.time_scale + self.time_origin

    def values(self, x: Tensor, variable: int) -> Tensor:
        x = x.double()
        if self.normalizer is None:
            return x
        return x * self.normalizer.std[variable] + self.normalizer.mean[variable]


@torch.no_grad()
def write_reconstructions(
    model: nn.Module,
    series: List[Series],
    s: LatentSettings,
    t_split: float,
    seed: int,
    variables: List[str],
    units: DataUnits,
    path: Path,
    chunk: int = 64,
) -> int:
    """reconstructions.csv: one row per observed value of every test series, in the data's units:
    series, time, variable, observed, predicted (posterior mean), role (input: given to the
    encoder; held_out: scored; other: neither). Returns the number of rows."""
    rows = 0
    with Path(path).open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["series", "time", "variable", "observed", "predicted", "role"])
        for start in range(0, len(series), chunk):
            part = series[start : start + chunk]
            g = torch.Generator().manual_seed(seed + EVAL_SEED_OFFSET + start)
            tb = make_task_batch(part, s, t_split, g)
            pred = predict(model, tb, s.eval_samples)[0].mean(0)  # [B, T, D]
            times = units.times(tb.batch.times)
            for b, one in enumerate(part):
                name = one.name or str(start + b)
                for i, j in tb.batch.mask[b].nonzero().tolist():
                    role = "input" if tb.inp[b, i, j] > 0 else "held_out" if tb.target[b, i, j] > 0 else "other"
                    observed = float(units.values(tb.batch.values[b, i, j], j))
                    predicted = float(units.values(pred[b, i, j], j))
                    t_bi = float(times[b, i] if times.dim() == 2 else times[i])
                    out.writerow([name, f"{t_bi:.10g}", variables[j], repr(observed), repr(predicted), role])
                    rows += 1
    return rows
