"""The vector field as the loops call it: packed state, evaluations counted into the stats,
and the first output checked against the state's shapes (a clear error instead of a broadcast)."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .solution import SolverStats
from .state import StatePacker, packed_func


class CheckedCountedFunc:
    """Counts evaluations into the stats and checks the first output against the state."""

    def __init__(self, func: Callable, packer: StatePacker, stats: SolverStats) -> None:
        self.func, self.packer, self.stats = func, packer, stats
        self.flat = packed_func(func, packer)
        self.checked = False

    def __call__(self, t: Tensor, y: Tensor) -> Tensor:
        self.stats.nfe += 1
        if not self.checked:
            return self._first_call(t, y)
        return self.flat(t, y)

    def check(self, t: Tensor, y: Tensor) -> None:
        """Run the first-call checks now, uncounted (before handing the raw func to compiled code)."""
        if not self.checked:
            with torch.no_grad():
                self._first_call(t, y.detach())

    def _first_call(self, t: Tensor, y: Tensor) -> Tensor:
        out = self.func(t, self.packer.unpack(y))
        if self.packer.is_tuple:
            if not isinstance(out, (tuple, list)) or len(out) != len(self.packer.shapes):
                raise ValueError(
                    f"func returned {type(out).__name__}"
                    f"{f' of length {len(out)}' if isinstance(out, (tuple, list)) else ''}"
                    f" but the state is a tuple of {len(self.packer.shapes)} tensors; "
                    "return one derivative per component"
                )
            got = [tuple(o.shape) for o in out]
            want = [tuple(s) for s in self.packer.shapes]
        else:
            if not isinstance(out, Tensor):
                raise ValueError(f"func returned {type(out).__name__}; expected a tensor shaped like y0")
            got, want = [tuple(out.shape)], [tuple(self.packer.shapes[0])]
        if got != want:
            raise ValueError(
                f"func(t, y) returned shape(s) {got} but the state has shape(s) {want}; "
                "dy/dt must have the same shape as y"
            )
        self.checked = True
        return self.packer.pack(out)
