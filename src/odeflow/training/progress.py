"""A dependency-free one-line progress bar: iteration, loss, ms/iter and any extra fields."""
from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int, label: str = "", stream: TextIO = sys.stderr, width: int = 24,
                 enabled: bool = True) -> None:
        self.total, self.label, self.stream, self.width, self.enabled = total, label, stream, width, enabled
        self.start = time.perf_counter()
        self.interactive = enabled and hasattr(stream, "isatty") and stream.isatty()

    def update(self, i: int, **fields: float) -> None:
        if not self.enabled:
            return
        done = i + 1
        if not self.interactive and done not in (1, self.total) and done % max(1, self.total // 10):
            return
        frac = done / self.total
        bar = "#" * int(self.width * frac) + "-" * (self.width - int(self.width * frac))
        ms = 1e3 * (time.perf_counter() - self.start) / done
        extra = " ".join(f"{k} {v:.4g}" for k, v in fields.items())
        line = f"{self.label} [{bar}] {done}/{self.total} {extra} {ms:.1f} ms/iter"
        self.stream.write(("\r" + line) if self.interactive else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.interactive:
            self.stream.write("\n")
