"""odeflow.keep_freed_memory(): glibc keeps blocks below 32 MiB on its heap; a clear False elsewhere."""

import platform
import subprocess
import sys

import pytest

from odeflow import malloc

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# In a child process (the setting lasts for the process): count glibc's mmapped blocks around
# a 16 MiB malloc, before and after the call.
CHILD = """
import ctypes, odeflow
libc = ctypes.CDLL("libc.so.6")
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in "a b c hblks e f g h i j".split()]
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
def mmapped_by_malloc():
    before = libc.mallinfo2().hblks
    p = libc.malloc(16 << 20)
    grew = libc.mallinfo2().hblks - before
    libc.free(ctypes.c_void_p(p))
    return grew
print(mmapped_by_malloc(), odeflow.keep_freed_memory(), mmapped_by_malloc())
"""


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_glibc_keeps_a_16_mib_block_on_the_heap_after_the_call():
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "True", "0"]


def test_not_glibc_changes_nothing_and_returns_false(monkeypatch):
    monkeypatch.setattr(platform, "libc_ver", lambda *a, **k: ("musl", "1.2"))
    assert malloc.keep_freed_memory() is False


def test_a_rejected_value_returns_false(monkeypatch):
    class Rejecting:
        class mallopt:  # noqa: N801 - stands in for the C function
            argtypes = restype = None

            def __new__(cls, param, value):
                return 0 if param == malloc.M_MMAP_THRESHOLD else 1

    monkeypatch.setattr(malloc, "_glibc", lambda: Rejecting())
    assert malloc.keep_freed_memory() is False


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_the_threshold_is_glibcs_documented_maximum():
    assert malloc.mmap_threshold_max() == (32 << 20 if sys.maxsize > 2**32 else 16 << 20)


def test_the_engine_calls_it_once_per_process_unless_turned_off(monkeypatch):
    calls = []
    monkeypatch.setattr(malloc, "keep_freed_memory", lambda: calls.append(1) or True)
    monkeypatch.setattr(malloc, "_engine_result", None)
    monkeypatch.setenv(malloc.ENV, "0")
    assert malloc.keep_freed_memory_for_training() is False and calls == []
    monkeypatch.setenv(malloc.ENV, "1")
    assert malloc.keep_freed_memory_for_training() and malloc.keep_freed_memory_for_training()
    assert calls == [1]
