"""The wrapper and kernel builds of a compiled solver run side by side, the link after both."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import List, Tuple

import pytest

from odeflow.solvers import parallel_build
from odeflow.solvers.parallel_build import build_side_by_side, parallel_cpp_builds


class FakeBuilder:
    """Records when its build ran; its output is a file it writes."""

    def __init__(self, path: Path, log: List[Tuple[str, str, float]], seconds: float) -> None:
        self.path, self.log, self.seconds = path, log, seconds

    def get_target_file_path(self) -> str:
        return str(self.path)

    def build(self) -> None:
        self.log.append((self.path.name, "start", time.perf_counter()))
        time.sleep(self.seconds)
        self.path.write_text("built")
        self.log.append((self.path.name, "end", time.perf_counter()))


def _no_lock(_path: str, timeout: float) -> contextlib.AbstractContextManager:
    return contextlib.nullcontext()


def _times(log: List[Tuple[str, str, float]], name: str, what: str) -> float:
    return next(t for n, w, t in log if n == name and w == what)


def test_wrapper_and_kernels_overlap_and_the_link_follows(tmp_path: Path) -> None:
    log: List[Tuple[str, str, float]] = []
    wrapper, kernels, link = (FakeBuilder(tmp_path / n, log, 0.3) for n in ("wrapper.o", "kernels.o", "lib.so"))
    build_side_by_side("unused", (wrapper, kernels, link), 1.0, _no_lock)
    assert all(p.exists() for p in (wrapper.path, kernels.path, link.path))
    # both compiles started before either ended, and the link started after both ended
    assert max(_times(log, n, "start") for n in ("wrapper.o", "kernels.o")) < min(
        _times(log, n, "end") for n in ("wrapper.o", "kernels.o")
    )
    assert _times(log, "lib.so", "start") >= max(_times(log, n, "end") for n in ("wrapper.o", "kernels.o"))


def test_built_outputs_are_not_built_again(tmp_path: Path) -> None:
    log: List[Tuple[str, str, float]] = []
    wrapper, kernels, link = (FakeBuilder(tmp_path / n, log, 0.0) for n in ("wrapper.o", "kernels.o", "lib.so"))
    kernels.path.write_text("old")
    build_side_by_side("unused", (wrapper, kernels, link), 1.0, _no_lock)
    assert {n for n, w, _ in log if w == "start"} == {"wrapper.o", "lib.so"}
    assert kernels.path.read_text() == "old"


def test_a_failed_build_is_raised_and_nothing_is_linked(tmp_path: Path) -> None:
    log: List[Tuple[str, str, float]] = []

    class Failing(FakeBuilder):
        def build(self) -> None:
            raise RuntimeError("g++ failed")

    wrapper, link = FakeBuilder(tmp_path / "wrapper.o", log, 0.0), FakeBuilder(tmp_path / "lib.so", log, 0.0)
    with pytest.raises(RuntimeError, match="g\\+\\+ failed"):
        build_side_by_side("unused", (wrapper, Failing(tmp_path / "k.o", log, 0.0), link), 1.0, _no_lock)
    assert not link.path.exists()


def test_the_scope_restores_inductors_builder_and_is_reentrant(monkeypatch: pytest.MonkeyPatch) -> None:
    codecache = parallel_build._inductor_worker()
    if codecache is None:
        pytest.skip("this torch builds without _worker_compile_cpp")
    monkeypatch.setattr(parallel_build, "usable_cores", lambda: 2)
    original = codecache._worker_compile_cpp
    with parallel_cpp_builds():
        inside = codecache._worker_compile_cpp
        assert inside is not original
        with parallel_cpp_builds():  # nested compiles in one thread must not deadlock
            pass
        assert codecache._worker_compile_cpp is inside
    assert codecache._worker_compile_cpp is original


def test_one_core_leaves_inductor_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    codecache = parallel_build._inductor_worker()
    if codecache is None:
        pytest.skip("this torch builds without _worker_compile_cpp")
    monkeypatch.setattr(parallel_build, "usable_cores", lambda: 1)
    original = codecache._worker_compile_cpp
    with parallel_cpp_builds():
        assert codecache._worker_compile_cpp is original


def test_other_threads_wait_for_the_scope() -> None:
    """Two threads compiling at once take the scope one after the other, so each restores what it found."""
    codecache = parallel_build._inductor_worker()
    if codecache is None:
        pytest.skip("this torch builds without _worker_compile_cpp")
    original = codecache._worker_compile_cpp
    barrier = threading.Barrier(2)

    def compile_once() -> None:
        barrier.wait()
        with parallel_cpp_builds():
            time.sleep(0.05)

    threads = [threading.Thread(target=compile_once) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codecache._worker_compile_cpp is original
