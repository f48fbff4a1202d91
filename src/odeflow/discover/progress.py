"""Progress bars for the discovery phases (tqdm on stderr; a no-op stand-in when off)."""

from __future__ import annotations

from typing import Any, Optional


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(enabled: bool, desc: str, total: Optional[int] = None, unit: str = "it") -> Any:
    """A tqdm bar (leave=False) when `enabled`, else an object with the same update/close methods."""
    if not enabled:
        return _Silent()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False)


def duration(seconds: float) -> str:
    """'40 s', '3.5 min', '1.2 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
