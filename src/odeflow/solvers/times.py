"""Times handed to the vector field: host floats (float64) to 0-d tensors of the state's real
dtype, optionally differentiable in the initial time, and nudged one ulp off a discontinuity."""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

Span = Tuple[Tensor, Tensor]  # a step's (t0, t1) as differentiable float64 0-d tensors


def real_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype of times handed to f: the state's, or its real counterpart for complex states."""
    return torch.empty((), dtype=dtype).real.dtype if dtype.is_complex else dtype


def perturb_stage_times(table: Tensor, c: Sequence[float], direction: float) -> Tensor:
    """Stage times with c = 0 moved one ulp into the step and c = 1 one ulp back from its end
    (torchdiffeq's perturb): f that jumps at a grid point is evaluated on the step's side.
    Next to 0 the shift is to the smallest normal number instead of a subnormal one (which
    flush-to-zero arithmetic would turn back into 0, the discontinuity itself).
    The shift carries no gradient (the times themselves still do)."""
    out = table.clone()
    tiny = torch.finfo(table.dtype).tiny
    for j, cj in enumerate(c):
        if cj in (0.0, 1.0):
            col = table[..., j].detach()
            toward = col + (direction if cj == 0.0 else -direction)
            moved = torch.nextafter(col, toward)
            moved = torch.where(moved.abs() < tiny, torch.sign(toward - col) * tiny, moved)
            out[..., j] = table[..., j] + (moved - col)
    return out


class StepTimes:
    """Maps float64 host times to the 0-d tensors handed to f (real dtype of the state).

    - ``anchor`` (T0, a float64 tensor): every time t is T0 + (t - t0), so stage times move with
      the initial time T0 while step sizes stay fixed (adaptive steps' time gradients);
    - a step given its ``span`` (its ends t0, t1 as tensors) has the stage times t0 + c (t1 - t0),
      differentiable in both ends (fixed grids' time gradients);
    - ``perturb``: every step's stages at c = 0 and c = 1 are taken one ulp inside the step
      (torchdiffeq's perturb); ``before_jump``: only the c = 1 stages of a step that ends on a
      discontinuity of f; the c = 0 stages of a step that starts on one of the ``jumps``.
    """

    def __init__(
        self,
        dtype: torch.dtype,
        device: torch.device,
        perturb: bool = False,
        anchor: Optional[Tensor] = None,
        t0: float = 0.0,
        jumps: frozenset = frozenset(),
    ) -> None:
        self.dtype, self.device, self.perturb, self.anchor, self.t0 = real_dtype(dtype), device, perturb, anchor, t0
        self.jumps = jumps

    def one(self, t: float) -> Tensor:
        return self.many([t])[0]

    def many(self, ts: List[float]) -> Tensor:
        """The times as one 1-D tensor of the state's dtype."""
        if self.anchor is None:
            return torch.tensor(ts, dtype=torch.float64).to(self.device, self.dtype)
        offsets = torch.tensor([t - self.t0 for t in ts], dtype=torch.float64, device=self.device)
        return (self.anchor + offsets).to(self.dtype)

    def stages(
        self, t: float, h: float, c: Sequence[float], before_jump: bool = False, span: Optional[Span] = None
    ) -> List[Tensor]:
        """The stage times t + c_i h of one step (see the class docstring)."""
        if span is not None:
            cs = torch.tensor(list(c), dtype=torch.float64, device=span[0].device)
            ts = (span[0] + (span[1] - span[0]) * cs).to(self.device, self.dtype)
        else:
            ts = self.many([t + ci * h for ci in c])
        direction = 1.0 if h > 0 else -1.0
        after_jump = span is None and t in self.jumps
        if self.perturb:
            ts = perturb_stage_times(ts[None], list(c), direction)[0]
        elif before_jump or after_jump:
            marks = [ci if (ci == 1.0 and before_jump) or (ci == 0.0 and after_jump) else 0.5 for ci in c]
            ts = perturb_stage_times(ts[None], marks, direction)[0]
        return list(ts.unbind())


def step_length(t0: float, t1: float, span: Optional[Span], dtype: torch.dtype) -> Union[float, Tensor]:
    """t1 - t0: a float, or with a span a differentiable 0-d tensor of the state's real dtype."""
    return t1 - t0 if span is None else (span[1] - span[0]).to(real_dtype(dtype))
