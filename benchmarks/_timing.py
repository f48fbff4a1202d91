"""Side-by-side timing: candidates are interleaved, and the median of repeats is reported."""

from __future__ import annotations

import platform
import statistics
import time
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, Optional

import torch


def cpu_side_by_side(fns: Dict[str, Callable[[], object]], repeats: int) -> Dict[str, float]:
    """Median CPU seconds (time.process_time) per call of each side, interleaved round-robin after
    one warm-up call each: under load from other processes CPU time moves less than wall time."""
    for fn in fns.values():
        fn()
    samples: Dict[str, list] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.process_time()
            fn()
            samples[name].append(time.process_time() - start)
    return {name: sorted(v)[len(v) // 2] for name, v in samples.items()}


def time_side_by_side(
    fns: Dict[str, Callable[[], object]],
    repeats: int = 7,
    min_time: float = 0.2,
    sync: Callable[[], None] = lambda: None,
) -> Dict[str, float]:
    """Median seconds per call of each function, measured round-robin in one process;
    ``sync`` runs after every call (torch.cuda.synchronize for GPU work)."""
    fns = {name: _then(fn, sync) for name, fn in fns.items()}
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


def time_loops_side_by_side(
    loops: Dict[str, Callable[[int], List[float]]], block: int, repeats: int = 5, warmup: int = 20
) -> Dict[str, float]:
    """Median seconds per iteration of training loops, measured round-robin in one process.

    ``loops[name](n)`` runs n iterations and returns the start time (time.perf_counter) of each;
    an iteration's time is the interval to the next start (the last one's is not known unless
    the loop appends an end time). Every loop runs `repeats` blocks of `block` iterations,
    the blocks of the loops interleaved; the first `warmup` intervals of each block are left out."""
    if block <= warmup + 1:
        raise ValueError(f"block ({block}) must exceed warmup + 1 ({warmup + 1})")
    intervals: Dict[str, List[float]] = {name: [] for name in loops}
    for _ in range(repeats):
        for name, run in loops.items():
            stamps = run(block)
            intervals[name] += [b - a for a, b in zip(stamps, stamps[1:])][warmup:]
    return {name: statistics.median(v) for name, v in intervals.items()}


def machine() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, Python {platform.python_version()}"
    )


def _then(fn: Callable[[], object], after: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        fn()
        after()

    return run


class TrainingCPUClock:
    """CPU seconds (time.process_time) of training only, for time-to-target benchmarks: from the
    end of each batch draw to the start of the next iteration, validations left out."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self._mark: Optional[float] = None
        self.at_validation: Dict[int, float] = {}  # iterations done -> training CPU seconds

    def iteration_starts(self) -> None:
        if self._mark is not None:
            self.cpu += time.process_time() - self._mark
            self._mark = None

    def batch_drawn(self) -> None:
        self._mark = time.process_time()

    @contextmanager
    def validating(self, iterations_done: int) -> Iterator[None]:
        start = time.process_time()
        self.at_validation[iterations_done] = self.cpu + start - self._mark
        yield
        self.cpu -= time.process_time() - start
