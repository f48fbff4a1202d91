"""``odeflow.keep_freed_memory()``: glibc's malloc keeps freed memory for reuse (opt-in).

By default glibc serves large blocks (above a threshold that starts at 128 KiB) with mmap and
hands them back with munmap when freed, and trims the top of the heap when more than 128 KiB is
free. A compiled solve that allocates and frees the same large buffers every iteration then pays
for fresh pages (page faults, zeroing) every iteration. This call sets, through ``mallopt``:

- ``M_MMAP_THRESHOLD`` to glibc's maximum on this platform (32 MiB on 64-bit): blocks below it
  come from the heap and are reused after ``free``;
- ``M_TRIM_THRESHOLD`` to 2 GiB - 1 (``mallopt`` takes an int): freed memory at the top of the
  heap is not handed back.

The process's resident memory then stays near its peak (it is not returned to the system until
the process ends), which is why it is an opt-in. Elsewhere (not glibc: macOS, Windows, musl)
it changes nothing and returns False.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform
import struct
from typing import Optional

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
INT_MAX = 2**31 - 1


def mmap_threshold_max() -> int:
    """glibc's largest accepted M_MMAP_THRESHOLD: 4 MiB x sizeof(long) (32 MiB on 64-bit)."""
    return 4 * 1024 * 1024 * struct.calcsize("l")


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") else None


def keep_freed_memory() -> bool:
    """Stop glibc's malloc from returning freed memory to the system (see the module docstring).
    True when glibc accepted both settings; False (nothing changed, logged at debug level) when
    this is not glibc or glibc rejected a value."""
    libc = _glibc()
    if libc is None:
        log.debug("odeflow.keep_freed_memory: not glibc (%s); malloc left as it is", platform.platform())
        return False
    libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    accepted = [
        libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold_max()),
        libc.mallopt(M_TRIM_THRESHOLD, INT_MAX),
    ]
    if not all(accepted):  # mallopt returns 0 for a rejected value
        log.debug("odeflow.keep_freed_memory: glibc rejected a setting (mallopt returned %s)", accepted)
        return False
    return True


ENV = "ODEFLOW_KEEP_FREED_MEMORY"  # '0': the engine leaves malloc as it is
_engine_result: Optional[bool] = None  # the engine's call, made once per process


def keep_freed_memory_for_training() -> bool:
    """The Trainer's call when it compiles a training step (the task's solves and the update):
    `keep_freed_memory` once per process, unless ``$ODEFLOW_KEEP_FREED_MEMORY`` is ``0``. True
    when the setting is in force."""
    global _engine_result
    if os.environ.get(ENV, "1").strip() == "0":
        log.info("odeflow: $%s=0, malloc left as it is", ENV)
        return False
    if _engine_result is None:
        _engine_result = keep_freed_memory()
        if _engine_result:
            log.info("odeflow: compiled training: glibc keeps freed memory ($%s=0 turns this off)", ENV)
    return _engine_result
