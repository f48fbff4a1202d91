"""Batches are pure functions of (seed, iteration), and ranks split the global batch exactly."""

import torch

from odeflow.training.data import EpochBatches, generated_shard
from odeflow.training.distributed import Distributed


def test_epoch_batches_of_two_ranks_cover_the_single_process_batch():
    n, batch, seed = 103, 10, 7
    one = EpochBatches(n, batch, seed, Distributed())
    ranks = [EpochBatches(n, batch, seed, Distributed(rank=r, world_size=2)) for r in range(2)]
    assert one.per_epoch == ranks[0].per_epoch == 10
    for it in (0, 3, 9, 10, 25):  # across epoch boundaries
        together = torch.cat([r.indices(it) for r in ranks])
        assert sorted(together.tolist()) == sorted(one.indices(it).tolist())
    epoch0 = torch.cat([one.indices(i) for i in range(10)])
    assert len(set(epoch0.tolist())) == 100  # no sample twice within an epoch
    assert not torch.equal(one.indices(0), one.indices(10))  # reshuffled next epoch


def test_generated_shards_are_rows_of_the_global_draw():
    draw = lambda n, s: torch.randn(n, 2, generator=torch.Generator().manual_seed(s))  # noqa: E731
    full = generated_shard(draw, 8, 3, 5, Distributed())
    parts = [generated_shard(draw, 8, 3, 5, Distributed(rank=r, world_size=2)) for r in range(2)]
    assert torch.equal(torch.cat(parts), full)
    assert not torch.equal(full, generated_shard(draw, 8, 3, 6, Distributed()))


def test_uneven_global_batch_is_explained():
    import pytest

    with pytest.raises(ValueError, match="multiple of 2"):
        Distributed(rank=0, world_size=2).shard(7)
