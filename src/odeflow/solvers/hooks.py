"""Step callbacks: user functions called by the integration loops at every step.

As in torchdiffeq, a vector field may carry ``callback_step(t0, y0, dt)`` (before every
attempted step), ``callback_accept_step(t0, y0, dt)`` and ``callback_reject_step(t0, y0, dt)``
(after the error test); the ``*_adjoint`` variants are called by the adjoint's backward solve.
t0 and dt are 0-d float64 tensors (dt negative when integrating backwards), y0 has the
shape of the state being solved.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor

from .state import StatePacker

NAMES = ("callback_step", "callback_accept_step", "callback_reject_step")

Callback = Callable[[Tensor, object, Tensor], object]


class StepHooks:
    """The callbacks of one solve, called with host times and the packed state."""

    def __init__(
        self,
        packer: StatePacker,
        step: Optional[Callback] = None,
        accept: Optional[Callback] = None,
        reject: Optional[Callback] = None,
    ) -> None:
        self.packer, self._step, self._accept, self._reject = packer, step, accept, reject

    @classmethod
    def from_func(cls, func: object, packer: StatePacker, suffix: str = "") -> Optional[StepHooks]:
        """The callbacks found as attributes of func (``suffix='_adjoint'`` for the backward ones)."""
        found = [getattr(func, name + suffix, None) for name in NAMES]
        for name, cb in zip(NAMES, found):
            if cb is not None and not callable(cb):
                raise TypeError(
                    f"func.{name}{suffix} is a {type(cb).__name__}; it must be callable as {name}{suffix}(t0, y0, dt)"
                )
        if not any(found):
            return None
        return cls(packer, *found)

    def _call(self, cb: Optional[Callback], t: float, y: Tensor, h: float) -> None:
        if cb is not None:
            cb(torch.tensor(t, dtype=torch.float64), self.packer.unpack(y), torch.tensor(h, dtype=torch.float64))

    def step(self, t: float, y: Tensor, h: float) -> None:
        self._call(self._step, t, y, h)

    def accept(self, t: float, y: Tensor, h: float) -> None:
        self._call(self._accept, t, y, h)

    def reject(self, t: float, y: Tensor, h: float) -> None:
        self._call(self._reject, t, y, h)
