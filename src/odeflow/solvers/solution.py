"""What a solve returns: the states at the requested times, the statistics and the status."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

from torch import Tensor


@dataclass
class SolverStats:
    """Counts of one solve. ``nfe_backward`` is filled in by the backward pass (adjoint
    evaluations, or recomputed evaluations under checkpointing)."""

    nfe: int = 0
    steps: int = 0
    accepted: int = 0
    rejected: int = 0
    nfe_backward: int = 0
    steps_backward: int = 0

    def count_evals(self, n: int) -> None:
        self.nfe += n

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Solution:
    """ys[i] is the state at ts[i]; a tuple state gives a tuple of such series.

    With events: ``events`` lists every located root (`events.EventRecord`); after a terminal
    event ``status`` is 'event', ts ends with the event time ``event_t`` (differentiable)
    and ys with the state there. ``compiled``: the solve ran through the compiled loop."""

    ts: Tensor
    ys: Any
    stats: SolverStats = field(default_factory=SolverStats)
    status: str = "success"
    events: List[Any] = field(default_factory=list)
    event_t: Optional[Tensor] = None
    compiled: bool = False  # ran through the compiled loop (compile=True, or "auto" once it decided to)
