"""Inductor's C++ wrapper and its kernels compiled by g++ side by side.

With the wrapper built apart from the kernels (`compiled.inductor_options`), Inductor builds each
compiled graph as three g++ runs, one after another: the wrapper at -O1, the kernels at -O3, then
the link. The first two do not depend on each other. While odeflow compiles a solver, and where
this process may run on two or more cores, they run at the same time and the link follows; the
first call's wall time shrinks by the shorter of the two builds (a CNF training step's forward
and backward graphs: about 2.8 s and 2.4 s of kernels beside 4–5 s of wrapper;
benchmarks/RESULTS.md). The built files are the same. The change is scoped to odeflow's own
compiles, never to a user's ``torch.compile``, and falls back to Inductor's own order where this
torch builds differently.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator, Optional, Sequence

_lock = threading.RLock()


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _inductor_worker() -> Optional[Any]:
    """Inductor's codecache module when it builds through ``_worker_compile_cpp(lock_path,
    cpp_builders)`` (torch 2.6 and later), else None."""
    try:
        from torch._inductor import codecache
    except ImportError:  # pragma: no cover - torch without Inductor
        return None
    worker = getattr(codecache, "_worker_compile_cpp", None)
    if worker is None or list(inspect.signature(worker).parameters) != ["lock_path", "cpp_builders"]:
        return None
    return codecache


def build_side_by_side(lock_path: str, cpp_builders: Sequence[Any], lock_timeout: float, file_lock: Callable) -> None:
    """Inductor's build of (wrapper, kernels, link): the first two at once, then the link; each
    skipped where its output exists (as Inductor does)."""
    *parts, link = cpp_builders
    with file_lock(lock_path, timeout=lock_timeout):
        pending = [b for b in parts if not os.path.exists(b.get_target_file_path())]
        with ThreadPoolExecutor(max_workers=len(pending) or 1) as pool:
            for done in [pool.submit(b.build) for b in pending]:
                done.result()
        if not os.path.exists(link.get_target_file_path()):
            link.build()


@contextlib.contextmanager
def parallel_cpp_builds() -> Iterator[None]:
    """While active, Inductor's separate wrapper and kernel builds run side by side (on two or more
    cores); a no-op otherwise."""
    codecache = _inductor_worker()
    if codecache is None or usable_cores() < 2:
        yield
        return
    from torch.utils._filelock import FileLock

    with _lock:
        original = codecache._worker_compile_cpp

        def worker(lock_path: str, cpp_builders: Sequence[Any]) -> None:
            if len(cpp_builders) != 3:
                return original(lock_path, cpp_builders)
            build_side_by_side(lock_path, cpp_builders, codecache.LOCK_TIMEOUT, FileLock)

        codecache._worker_compile_cpp = worker
        try:
            yield
        finally:
            codecache._worker_compile_cpp = original
