"""ODE-RNN and RNN-Δt with each series on its own times (no union grid of the batch's times).

times [B, N] holds row b's own times t_b1 < ... < t_bn_b (n_b = lengths[b]; the rest is padding,
`data.irregular.collate_rows`). Step i of the loop takes every row's i-th time: between a row's
times its hidden state moves by

    h_b(t_bi^-) = ODESolve(f_h, h_b(t_b,i-1), t_b,i-1 -> t_bi)

with each row its own interval and its own adaptive steps (`solve(..., per_sample=True)`), then
the GRU update of `odernn.ODERNN` (Rubanova et al. 2019). A row's padded times are skipped: its
state stays as it was, and only the rows that still have a time are solved. Row b's result is
the one of the series alone on its own times, whatever the rest of the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional

import torch
from torch import Tensor


@dataclass
class RecurrentStates:
    """before: h(t_i^-) [T, B, H] (what a prediction at t_i may use); after: h(t_i) [T, B, H];
    final: the state after the last step (at t0 for a reverse run) [B, H]. Indexed in grid order
    (i = 0 .. T-1) whatever the direction of the run."""

    before: Tensor
    after: Tensor
    final: Tensor


def check_rows(times: Tensor, values: Tensor, mask: Tensor, lengths: Optional[Tensor]) -> Tensor:
    """Shapes of a per-row batch (times [B, N], values and mask [B, N, D]); the lengths [B] (all N if None)."""
    B, N = times.shape
    if values.dim() != 3 or values.shape[:2] != (B, N):
        raise ValueError(
            f"with times [B, N] = {tuple(times.shape)}, values must be [B, N, D]; got {tuple(values.shape)}"
        )
    if mask.shape != values.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} must equal values shape {tuple(values.shape)}")
    if N > 1 and not bool((times[:, 1:] > times[:, :-1]).all()):
        raise ValueError(
            "each row of times [B, N] must be strictly increasing (padding too: data.irregular.collate_rows)"
        )
    if lengths is None:
        return torch.full((B,), N, dtype=torch.long, device=times.device)
    if lengths.shape != (B,) or bool((lengths < 1).any()) or bool((lengths > N).any()):
        raise ValueError(f"lengths must be [B={B}] with values in 1..N={N}; got {lengths.tolist()}")
    return lengths.to(times.device)


def evolve_rows(core: Any, h: Tensor, t_from: Tensor, t_to: Tensor, rows: Tensor) -> Tensor:
    """h with the rows where `rows` [B] is True moved from t_from [B] to t_to [B], each on its own steps."""
    if core.field is None or not bool(rows.any()):
        return h
    idx = rows.nonzero().squeeze(1)
    span = torch.stack([t_from[idx], t_to[idx]], dim=1)
    moved = core.solver.rows(core.field, h[idx], span)[-1]
    return h.index_put((idx,), moved)


def run_rows(
    core: Any,
    times: Tensor,
    values: Tensor,
    mask: Tensor,
    reverse: bool,
    t0: Optional[Tensor],
    h0: Optional[Tensor],
    lengths: Optional[Tensor],
) -> RecurrentStates:
    """`ODERNN.forward` on times [B, N]: before/after [N, B, H] indexed by each row's own time
    index; final [B, H] the state after the row's last time (reverse: its first, then t0 [B]
    where earlier)."""

    n = check_rows(times, values, mask, lengths)
    values = torch.where(mask > 0, values, torch.zeros_like(values))
    mask = mask.to(values.dtype)
    B, N, _ = values.shape
    h = h0 if h0 is not None else values.new_zeros(B, core.hidden_dim)
    before: List[Tensor] = [h] * N
    after: List[Tensor] = [h] * N
    zeros = values.new_zeros(B, core.input_dim)
    for i in range(N - 1, -1, -1) if reverse else range(N):
        active = n > i  # rows with an i-th time of their own
        moving = n > i + 1 if reverse else active & (i > 0)  # ... and one before it in the run
        j = min(i + 1, N - 1) if reverse else max(i - 1, 0)  # the previous time of the run
        h = evolve_rows(core, h, times[:, j], times[:, i], moving)
        dt = torch.where(moving, (times[:, i] - times[:, j]).abs(), torch.zeros_like(times[:, i])).unsqueeze(1)
        if core.update_every_time:
            h_minus = core.cell(core._input(zeros, zeros, dt), h)
        else:
            h_minus = h
        h_obs = core.cell(core._input(values[:, i], mask[:, i], dt), h)
        seen = (mask[:, i].sum(-1, keepdim=True) > 0) | core.update_every_time
        h_new = torch.where(seen, h_obs, h_minus)
        keep = active.unsqueeze(1)
        before[i] = torch.where(keep, h_minus, h)
        h = torch.where(keep, h_new, h)
        after[i] = h
    if reverse and t0 is not None:
        t0_rows = t0.to(times.dtype).expand(B)
        h = evolve_rows(core, h, times[:, 0], t0_rows, t0_rows < times[:, 0])
    return RecurrentStates(torch.stack(before), torch.stack(after), h)
