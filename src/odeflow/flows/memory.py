"""Measuring memory: the tensor bytes a piece of code keeps alive at its peak, free memory on a
device, and the process's own peak (for summary.json's `peak_memory_mb`).

`LiveTensorBytes` counts, through a TorchDispatchMode, every storage created while it is
active and frees it when the storage dies (a weak reference on the storage), so its `peak` is
the exact high-water mark of tensor memory the code allocated, on any device, independent of
the allocator's caching (which makes RSS on a CPU a noisy measure of small probes).
"""

from __future__ import annotations

import functools
import resource
import weakref
from typing import Any, Dict, Optional, Tuple

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

GB = 1024**3
MB = 1024**2


class LiveTensorBytes(TorchDispatchMode):
    """Bytes of the tensor storages created inside the block that are still alive: `current`,
    and its maximum `peak`. Storages that existed before (parameters, data) are not counted."""

    def __init__(self) -> None:
        super().__init__()
        self.current = 0
        self.peak = 0
        self._live: Dict[int, int] = {}
        self._refs: Dict[int, Any] = {}

    def _on_free(self, key: int, _ref: object) -> None:
        """weakref callback: the storage ``key`` was freed."""
        self._free(key)

    def _free(self, key: int) -> None:
        self.current -= self._live.pop(key, 0)
        self._refs.pop(key, None)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                storage = t.untyped_storage()
                key = id(storage)
                if key in self._live or storage.nbytes() == 0:
                    continue
                try:
                    ref = weakref.ref(storage, functools.partial(self._on_free, key))
                except TypeError:  # pragma: no cover - storages without weak references
                    continue
                self._live[key], self._refs[key] = storage.nbytes(), ref
                self.current += storage.nbytes()
                self.peak = max(self.peak, self.current)
        return out


def cpu_available_bytes() -> Optional[int]:
    """MemAvailable from /proc/meminfo (Linux); None elsewhere."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def process_rss_bytes() -> int:
    """Resident set size of this process now (Linux /proc), else its peak (getrusage)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def process_peak_bytes(device: torch.device) -> int:
    """The process's peak: on CUDA the peak allocated GPU memory, else the peak RSS."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def in_use_bytes(device: torch.device) -> int:
    """What counts against the budget already: GPU memory allocated, or this process's RSS."""
    if device.type == "cuda":
        return int(torch.cuda.memory_allocated(device))
    return process_rss_bytes()


SAFE_FRACTION = 0.5


def default_budget_bytes(device: torch.device, fraction: float = SAFE_FRACTION) -> int:
    """A safe default budget: what this process holds plus `fraction` of the free memory
    (free GPU memory on CUDA, MemAvailable on the CPU; 4 GB when it cannot be read)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return in_use_bytes(device) + int(fraction * free)
    available = cpu_available_bytes()
    if available is None:
        return 4 * GB
    return in_use_bytes(device) + int(fraction * available)


def budget_bytes(max_memory_gb: Optional[float], device: torch.device) -> Tuple[int, str]:
    """(budget in bytes, where it came from) for --max-memory GB (None: the safe default)."""
    if max_memory_gb is not None:
        if not max_memory_gb > 0:
            raise ValueError(f"max_memory must be > 0 GB; got {max_memory_gb!r}")
        return int(max_memory_gb * GB), f"--max-memory {max_memory_gb:g} GB"
    where = "free GPU memory" if device.type == "cuda" else "available RAM"
    value = default_budget_bytes(device)
    return value, f"default: in use + {SAFE_FRACTION:.0%} of the {where} = {value / GB:.1f} GB"
