"""Times each row's steps must land on in a per-sample solve (step_t, jump_t), as `loop._Stops` for one sample.

A row's step that would pass its next stop s ends on it (h_b = s - t_b); a step never passes
a stop it has not landed on. At a jump time f is discontinuous: a step ending there evaluates
its c = 1 stages one ulp before it, and the steps starting there their c = 0 stages one ulp
after it (`times.StepTimes`, torchdiffeq's jump_t), so f is always taken on the step's side.
Stops come from ``Adaptive(step_t, jump_t)`` (shared by every row) and from
``PerSample(step_t, jump_t)`` ([batch, K] tensors, NaN entries ignored: rows with fewer stops).
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import Tensor

from .stepping import Adaptive


def _rows_of(shared, given: Optional[Tensor], batch: int, name: str) -> Tensor:
    """[batch, K] float64 (NaN: none) from the shared tuple and the per-sample tensor."""
    parts = [torch.tensor(list(shared), dtype=torch.float64).reshape(1, -1).expand(batch, -1)]
    if given is not None:
        g = torch.as_tensor(given).detach().to(torch.float64).cpu()
        if g.dim() != 2 or g.shape[0] != batch:
            raise ValueError(
                f"PerSample({name}=...) is one row of times per sample, shape [batch, K] with batch = {batch}; "
                f"got shape {tuple(g.shape)} (pad shorter rows with NaN)"
            )
        if bool(torch.isinf(g).any()):
            raise ValueError(f"PerSample({name}=...): times must be finite (NaN marks padding)")
        parts.append(g)
    return torch.cat(parts, dim=1)


class SampleStops:
    """Every row's stops (step_t and jump_t together) and jump times, ahead of its first time.

    ``next(idx)``: each row's next stop (+-inf: none, in the row's direction); ``passed``
    moves past the stops an accepted step reached; ``at_jump(t, idx)``: rows whose time is one
    of their jump times."""

    def __init__(self, step: Adaptive, step_t: Optional[Tensor], jump_t: Optional[Tensor], t_out: Tensor) -> None:
        batch, dev = t_out.shape[0], t_out.device
        self.direction = torch.sign(t_out[:, -1] - t_out[:, 0]) if t_out.shape[1] > 1 else torch.ones(batch, device=dev)
        d = self.direction.cpu().unsqueeze(1)
        stops = _rows_of(step.step_t, step_t, batch, "step_t")
        jumps = _rows_of(step.jump_t, jump_t, batch, "jump_t")
        inf = torch.tensor(float("inf"), dtype=torch.float64)
        # in each row's direction: increasing, +inf for no stop
        self.jumps_fwd = torch.where(torch.isnan(jumps), inf, jumps * d).sort(dim=1).values.to(dev)
        both = torch.cat([stops, jumps], dim=1)
        self.stops_fwd = torch.where(torch.isnan(both), inf, both * d).sort(dim=1).values.to(dev)
        self.any = bool(torch.isfinite(self.stops_fwd).any())
        self.has_jumps = bool(torch.isfinite(self.jumps_fwd).any())
        pad = torch.full((batch, 1), float("inf"), dtype=torch.float64, device=dev)
        self.stops_fwd = torch.cat([self.stops_fwd, pad], dim=1)  # next() never runs off the end
        self.i = torch.searchsorted(self.stops_fwd, (t_out[:, 0] * self.direction).unsqueeze(1), right=True).squeeze(1)

    def _sub(self, x: Tensor, idx: Optional[Tensor]) -> Tensor:
        return x if idx is None else x.index_select(0, idx)

    def next(self, idx: Optional[Tensor]) -> Tensor:
        """Each row's next stop in its own time (+-inf where it has none left)."""
        fwd = self._sub(self.stops_fwd, idx).gather(1, self._sub(self.i, idx).unsqueeze(1)).squeeze(1)
        return fwd * self._sub(self.direction, idx)

    def passed(self, t1: Tensor, acc: Tensor, idx: Optional[Tensor]) -> None:
        """The accepted rows move past every stop up to their new time t1."""
        d, stops = self._sub(self.direction, idx), self._sub(self.stops_fwd, idx)
        reached = torch.searchsorted(stops, (t1 * d).unsqueeze(1), right=True).squeeze(1)
        i = torch.where(acc, torch.maximum(reached, self._sub(self.i, idx)), self._sub(self.i, idx))
        self.i = i if idx is None else self.i.index_copy(0, idx, i)

    def end_on_stops(
        self, act: Tensor, t: Tensor, h: Tensor, target: Tensor, land: Tensor, direction: Tensor, idx: Optional[Tensor]
    ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """A running row's step that would pass its next stop ends on it. Returns (step, target,
        landing, landing on an output time): a stop reached first is not an output landing."""
        stop = self.next(idx)
        on_stop = act & ((t + h - stop) * direction > 0)
        return (
            torch.where(on_stop, stop - t, h),
            torch.where(on_stop, stop, target),
            land | on_stop,
            land & ~on_stop,
        )

    def at_jump(self, t: Tensor, idx: Optional[Tensor]) -> Tensor:
        """[n] bool: the row's time t is one of its jump times."""
        if not self.has_jumps:
            return torch.zeros(t.shape[0], dtype=torch.bool, device=t.device)
        tf = (t * self._sub(self.direction, idx)).unsqueeze(1)
        return (self._sub(self.jumps_fwd, idx) == tf).any(dim=1)


def nudge(t: Tensor, rows: Tensor, toward: Tensor, dtype: torch.dtype) -> Tensor:
    """The times t [n] (float64) of the rows ``rows`` moved one ulp of ``dtype`` toward
    sign(toward) (next to 0 to the smallest normal number, as `times.perturb_stage_times`);
    every time as the field sees it (in ``dtype``), returned as float64."""
    col = t.to(dtype)
    goal = col + toward.to(dtype)
    moved = torch.nextafter(col, goal)
    tiny = torch.finfo(dtype).tiny
    moved = torch.where(moved.abs() < tiny, torch.sign(goal - col) * tiny, moved)
    return torch.where(rows, moved, col).to(torch.float64)


def nudge_stages(
    stage_t: List[Tensor], c, after: Tensor, before: Tensor, direction: Tensor, dtype: torch.dtype
) -> List[Tensor]:
    """Stage times with the c = 0 stages of rows ``after`` a jump one ulp into the step and the
    c = 1 stages of rows ending ``before`` one one ulp back from its end."""
    out = []
    for ti, ci in zip(stage_t, c):
        if ci == 0.0:
            ti = nudge(ti, after, direction, dtype)
        elif ci == 1.0:
            ti = nudge(ti, before, -direction, dtype)
        out.append(ti)
    return out
