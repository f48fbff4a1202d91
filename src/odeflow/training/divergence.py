"""When a training loss has diverged: it stayed orders of magnitude above its best.

A loss that is positive throughout (squared errors, ELBO terms) has diverged when each of the
last ``window`` losses exceeds ``factor`` times the best loss so far and the first loss of the
run (so a tiny loss that wobbles around 1e-9 is not a divergence). A signed loss (a negative
log-likelihood) has diverged when each of the last ``window`` losses exceeds the best by
``factor`` times max(|best|, |first - best|, 1): the same orders-of-magnitude test measured
on the scale the run has moved over.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Deque, Optional

WINDOW = 3  # consecutive losses that must all be far above the best (one spike is not divergence)


class DivergenceWatch:
    """Feed each iteration's loss to ``update``; it returns a cause (a sentence) once diverged."""

    def __init__(self, factor: float, window: int = WINDOW) -> None:
        if not factor > 1:
            raise ValueError(f"diverge_factor must be > 1; got {factor!r}")
        self.factor, self.window = float(factor), window
        self.first: Optional[float] = None
        self.best, self.best_iteration, self.positive = math.inf, -1, True
        self.recent: Deque[float] = deque(maxlen=window)

    def update(self, loss: float, iteration: int) -> Optional[str]:
        if not math.isfinite(loss):
            return None  # the engine reports a non-finite loss itself
        if self.first is None:
            self.first = loss
        self.positive = self.positive and loss > 0
        self.recent.append(loss)
        if loss < self.best:
            self.best, self.best_iteration = loss, iteration
        if len(self.recent) < self.window or not self._far(min(self.recent)):
            return None
        return (
            f"the training loss diverged: {loss:.4g} now against its best {self.best:.4g} at iteration "
            f"{self.best_iteration} (above {self.factor:g}x for {self.window} iterations)"
        )

    def _far(self, low: float) -> bool:
        first = self.first if self.first is not None else low
        if self.positive:
            return low > self.factor * self.best and low > first
        scale = max(abs(self.best), abs(first - self.best), 1.0)
        return low > self.best + self.factor * scale


DIVERGED_HINT = (
    "best.pt holds the model at the best loss; lower the learning rate (--lr), clip gradients "
    "(--grad-clip), use tighter solver tolerances, or raise --diverge-factor if such jumps are expected"
)
