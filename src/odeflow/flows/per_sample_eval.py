"""CNF evaluation with every row on its own adaptive steps (`solve(..., per_sample=True)`).

Each row b solves its augmented state s_b = (z_b, l_b) on [0, T] (FFJORD, Grathwohl et al.
2019; Chen et al. 2018):

    dz_b/dt = f(t, z_b),   dl_b/dt = -tr(df/dz)(t, z_b),   log p(x_b) = log N(z_b(T)) - l_b(T)

with its own step size and error norm (the RMS over the row's D + 1 components), so an easy row
is not held to the steps of the hardest row in its chunk. A row's result is that of the row
solved alone with the shared-step solver. Evaluation only (no gradients).
"""

from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
from torch import Tensor

from ..solve import solve
from ..solvers.per_sample import PerSample
from ..solvers.stepping import Adaptive
from .cnf import CNF, CNFStack
from .divergence import sample_noise

COMPACT = 0.5  # evaluate only the running rows once at most half of a chunk is left


def _block_per_sample(block: CNF, x: Tensor, compact: float) -> Tuple[Tensor, Tensor]:
    """One block: (z(T), l(T)) per row, each row on its own steps; block.last_stats holds the counts."""
    D = block.dim
    noise = block._e

    def field(t: Tensor, s: Tensor, rows: Optional[Tensor] = None) -> Tensor:
        if noise is not None and rows is not None:
            block._e = noise[rows]
        f, div = block.rates(t, s[:, :D], False, False)
        return torch.cat([f, -div.unsqueeze(1)], dim=1)

    s0 = torch.cat([x, x.new_zeros(x.shape[0], 1)], dim=1)
    sol = solve(
        field,
        s0,
        block._times(False),
        method=block.method,
        step=block.step,
        per_sample=PerSample(compact=compact) if compact > 0 else True,
    )
    block._e = noise
    block.last_stats = sol.stats
    end = sol.ys[-1]
    return end[:, :D], end[:, D]


def transform_per_sample(flow: Union[CNF, CNFStack], x: Tensor, compact: float = COMPACT) -> Tuple[Tensor, Tensor]:
    """x -> (z, l) through every block as `flow.transform`, each row on its own adaptive steps of
    the blocks' (adaptive) method; ``compact`` as `PerSample(compact=...)` (0: never)."""
    blocks = flow.cnfs if isinstance(flow, CNFStack) else [flow]
    for b in blocks:
        if not isinstance(b.step, Adaptive):
            raise ValueError(
                f"per-sample evaluation needs an adaptive step (each row picks its own); the solver is "
                f"{b.method} {b.step}: use an embedded method with Adaptive(rtol, atol), or evaluate without per_sample"
            )
    total = x.new_zeros(x.shape[0])
    with torch.no_grad():
        for b in blocks:
            if b.divergence == "hutchinson":
                b._e = sample_noise(x, b.noise, shard=b.noise_shard)
            x, logdet = _block_per_sample(b, x, compact)
            total = total + logdet
    return x, total
