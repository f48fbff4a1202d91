"""The progress bar (tqdm): it/s, ETA, and the latest loss, NFE and T as postfix."""

from __future__ import annotations

import sys
from typing import Any, Dict, Iterator

from tqdm.auto import tqdm


class Progress:
    """A tqdm bar over [start, total) iterations; ``enabled=False`` (--quiet) prints nothing."""

    def __init__(self, total: int, start: int = 0, label: str = "", enabled: bool = True) -> None:
        self.bar = tqdm(
            total=total,
            initial=start,
            desc=label,
            disable=not enabled,
            dynamic_ncols=True,
            file=sys.stderr,
            unit="it",
            mininterval=0.5,
        )

    def update(self, fields: Dict[str, Any]) -> None:
        if self.bar.disable:  # --quiet: not even the postfix text is built
            return
        self.bar.set_postfix({k: f"{v:.4g}" if isinstance(v, float) else v for k, v in fields.items()}, refresh=False)
        self.bar.update(1)

    def write(self, message: str) -> None:
        self.bar.write(message, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


def chunk_starts(n: int, batch: int, label: str = "", enabled: bool = True) -> Iterator[int]:
    """Start indices 0, batch, 2·batch, ... < n with a tqdm bar over the n items (what is being
    done in `label`, items/s and ETA); ``enabled=False`` (--quiet) prints nothing."""
    with tqdm(
        total=n,
        desc=label,
        disable=not enabled,
        dynamic_ncols=True,
        file=sys.stderr,
        unit="item",
        mininterval=0.5,
        leave=False,
    ) as bar:
        for start in range(0, n, batch):
            yield start
            bar.update(min(batch, n - start))
