"""torch.distributed for the Trainer: one process per device under torchrun, DDP for gradients.

`Distributed.from_environment()` reads torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR/PORT) and joins the process group: gloo on CPU, NCCL on CUDA. Without them (a
plain `python`/`odeflow` call) it is a single process and every collective is the identity,
so tasks call the same helpers either way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional, Union

import torch
import torch.distributed as dist
from torch import Tensor, nn


def is_main_process() -> bool:
    """True unless this is a torchrun worker of rank > 0 (for printing once)."""
    return int(os.environ.get("RANK", "0")) == 0


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: Optional[str] = None  # None: single process, no process group

    @classmethod
    def from_environment(cls, device: str = "cpu") -> Distributed:
        """Join torchrun's process group when WORLD_SIZE > 1; else a single process."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        backend = "nccl" if device == "cuda" else "gloo"
        if backend == "nccl" and not torch.cuda.is_available():
            raise ValueError(
                "device 'cuda' was asked for under torchrun but CUDA is not available; use --device cpu (gloo)"
            )
        if not dist.is_initialized():
            if backend == "nccl":
                torch.cuda.set_device(local)
            dist.init_process_group(backend=backend)
        return cls(rank=rank, world_size=world, local_rank=local, backend=backend)

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def device(self, kind: str) -> torch.device:
        """The device of this rank for 'cpu', 'cuda' or 'auto'."""
        if kind == "auto":
            kind = "cuda" if torch.cuda.is_available() else "cpu"
        if kind == "cuda":
            if not torch.cuda.is_available():
                raise ValueError("device 'cuda' was asked for but CUDA is not available; use --device cpu")
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")

    def shard(self, n: int) -> slice:
        """Rows of a global batch of n that belong to this rank (equal shards)."""
        if n % self.world_size:
            raise ValueError(
                f"the global batch {n} does not split evenly over {self.world_size} processes; "
                f"use a batch that is a multiple of {self.world_size}"
            )
        per = n // self.world_size
        return slice(self.rank * per, (self.rank + 1) * per)

    def mean(self, value: Union[Tensor, float]) -> Tensor:
        """Average of a tensor (or number) over ranks; every rank gets the result."""
        t = torch.as_tensor(value, dtype=torch.float64).clone() if not isinstance(value, Tensor) else value.clone()
        if self.active:
            t = self._to_backend(t)
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
            t = t / self.world_size
        return t

    def sum(self, value: Union[Tensor, float]) -> Tensor:
        t = torch.as_tensor(value, dtype=torch.float64).clone() if not isinstance(value, Tensor) else value.clone()
        if self.active:
            t = self._to_backend(t)
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def sample_mean(self, per_sample: Tensor) -> float:
        """Mean over all samples of all ranks of a per-sample vector (shards may differ in size)."""
        both = self.sum(
            torch.stack(
                [
                    per_sample.detach().double().sum(),
                    torch.tensor(float(per_sample.numel()), dtype=torch.float64, device=per_sample.device),
                ]
            )
        )
        return float(both[0] / both[1])

    def max(self, value: float) -> float:
        t = torch.tensor(float(value), dtype=torch.float64)
        if self.active:
            t = self._to_backend(t)
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return float(t)

    def broadcast_flag(self, flag: bool) -> bool:
        """True on every rank if it is True on any (e.g. a stop signal seen by one rank)."""
        return self.max(1.0 if flag else 0.0) > 0 if self.active else flag

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's Python object on every rank (our own processes' data, e.g. the summary)."""
        if not self.active:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def wrap(self, module: nn.Module, device: torch.device) -> nn.Module:
        """DistributedDataParallel around the module when there are several processes."""
        if not self.active:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    def close(self) -> None:
        if self.active and dist.is_initialized():
            dist.destroy_process_group()

    def _to_backend(self, t: Tensor) -> Tensor:
        return t.cuda(self.local_rank) if self.backend == "nccl" else t.cpu()
