"""Batches as pure functions of (seed, iteration): a resumed run draws exactly what the
uninterrupted run drew, and under torchrun every rank gets its shard of the same global batch.

- Generated data (toy densities, simulated series): draw the global batch from a seed derived
  from (seed, iteration) and keep this rank's rows.
- Finite data sets: torch's DistributedSampler (shuffled per epoch with set_epoch) gives each
  rank its indices; batch k of an epoch is rows [k*b, (k+1)*b) of them, b the per-rank batch.
  Together the ranks cover the same samples as one process with the global batch.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor
from torch.utils.data.distributed import DistributedSampler

from .distributed import Distributed


def iteration_seed(seed: int, iteration: int) -> int:
    """A distinct, reproducible seed for each (run seed, iteration)."""
    return seed * 1_000_003 + iteration


def generated_shard(
    draw: Callable[[int, int], Tensor], global_batch: int, seed: int, iteration: int, dist: Distributed
) -> Tensor:
    """This rank's rows of draw(global_batch, iteration_seed(seed, iteration))."""
    return draw(global_batch, iteration_seed(seed, iteration))[dist.shard(global_batch)]


class EpochBatches:
    """Indices of this rank's batch for any iteration of shuffled epochs over n samples.

    The last incomplete global batch of an epoch is dropped (every batch has the same size)."""

    def __init__(self, n: int, global_batch: int, seed: int, dist: Distributed) -> None:
        if global_batch > n:
            raise ValueError(
                f"batch {global_batch} is larger than the training set ({n} samples); use a smaller --batch"
            )
        self.per_rank = global_batch // dist.world_size
        dist.shard(global_batch)  # validates divisibility
        # DistributedSampler only takes len() of its data set; torch's stub asks for a Dataset
        self.sampler: DistributedSampler[int] = DistributedSampler(
            range(n),  # type: ignore[arg-type]
            num_replicas=dist.world_size,
            rank=dist.rank,
            shuffle=True,
            seed=seed,
            drop_last=True,
        )
        self.per_epoch = len(self.sampler) // self.per_rank
        self._epoch, self._indices = -1, torch.empty(0, dtype=torch.long)

    def indices(self, iteration: int) -> Tensor:
        epoch, k = divmod(iteration, self.per_epoch)
        if epoch != self._epoch:
            self.sampler.set_epoch(epoch)
            self._epoch, self._indices = epoch, torch.tensor(list(iter(self.sampler)), dtype=torch.long)
        return self._indices[k * self.per_rank : (k + 1) * self.per_rank]
