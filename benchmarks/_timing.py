"""Side-by-side timing: candidates are interleaved, and the median of repeats is reported."""
from __future__ import annotations

import platform
import statistics
import time
from typing import Callable, Dict

import torch


def time_side_by_side(fns: Dict[str, Callable[[], object]], repeats: int = 7, min_time: float = 0.2) -> Dict[str, float]:
    """Median seconds per call of each function, measured round-robin in one process."""
    loops = {}
    for name, fn in fns.items():
        fn()  # warm-up
        start = time.perf_counter()
        n = 0
        while time.perf_counter() - start < min_time or n < 1:
            fn()
            n += 1
        loops[name] = n
    samples: Dict[str, list] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(loops[name]):
                fn()
            samples[name].append((time.perf_counter() - start) / loops[name])
    return {name: statistics.median(v) for name, v in samples.items()}


def machine() -> str:
    return (f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
            f"torch {torch.__version__}, Python {platform.python_version()}")
