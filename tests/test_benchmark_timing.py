"""benchmarks/_timing.time_loops_side_by_side: per-iteration medians of interleaved blocks."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _timing import time_loops_side_by_side  # noqa: E402


def test_medians_leave_out_the_warmup_and_blocks_interleave():
    order = []

    def loop(name, step, slow_start):
        def run(n):
            order.append(name)
            t, stamps = 0.0, []
            for k in range(n + 1):
                stamps.append(t)
                t += 100.0 if k < slow_start else step
            return stamps

        return run

    out = time_loops_side_by_side({"a": loop("a", 2.0, 3), "b": loop("b", 5.0, 3)}, block=10, repeats=3, warmup=3)
    assert out == {"a": 2.0, "b": 5.0}  # the slow first 3 intervals of every block are left out
    assert order == ["a", "b"] * 3
    with pytest.raises(ValueError, match="block"):
        time_loops_side_by_side({"a": loop("a", 1.0, 0)}, block=3, warmup=3)
