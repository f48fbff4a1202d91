"""Control inputs u(t) (SINDYc: Brunton, Proctor & Kutz 2016): extra observed columns that enter the
library but are not predicted. Wherever the pipeline integrates (the neural fit's shooting windows,
its samples, the fits on the observations) u is needed between observation times: it is taken
linear between a trajectory's observations and constant beyond its ends,

    u(t) = u_j + (t − t_j)/(t_{j+1} − t_j) · (u_{j+1} − u_j),   t_j <= t <= t_{j+1}.

An rk4 step of length h from t uses u(t), u(t + h/2) and u(t + h) (`stages`).
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import torch
from torch import Tensor


class InputSignal:
    """u(t) per trajectory from observations t [n], u [n, p], trajectory ids [n] (rows of a
    trajectory contiguous, times increasing)."""

    def __init__(self, t: Tensor, u: Tensor, trajectory: Tensor, names: Sequence[str]) -> None:
        if u.dim() != 2 or u.shape[0] != t.shape[0] or u.shape[1] != len(names):
            raise ValueError(f"need inputs u [n, p] with p names; got {tuple(u.shape)} for {list(names)}")
        if not bool(torch.isfinite(u).all()):
            raise ValueError(f"input columns {list(names)} contain NaN or inf; drop or fill those rows first")
        self.t, self.u = t.to(torch.float64), u.to(torch.float64)
        self.trajectory = trajectory.long()
        self.names: List[str] = list(names)
        top = int(self.trajectory.max()) + 1
        self.first = torch.zeros(top, dtype=torch.long)
        self.last = torch.zeros(top, dtype=torch.long)
        for k in torch.unique(self.trajectory).tolist():
            rows = (self.trajectory == k).nonzero().flatten()
            self.first[k], self.last[k] = rows[0], rows[-1]

    @property
    def width(self) -> int:
        return self.u.shape[1]

    def at(self, times: Tensor, trajectory: Tensor) -> Tensor:
        """u [m, p] at times [m] of trajectories [m]."""
        times = times.to(torch.float64).reshape(-1)
        k = trajectory.long().reshape(-1).expand_as(times)
        lo, hi = self.first[k], self.last[k]
        q = torch.minimum(torch.maximum(times, self.t[lo]), self.t[hi])
        # the interval [t_j, t_j+1] holding q, searched within the trajectory's rows
        j = lo.clone()
        span = int((hi - lo).max()) if len(k) else 0
        step = 1
        while step < span:
            step *= 2
        while step >= 1:  # branch-free binary search: largest j in [lo, hi - 1] with t_j <= q
            cand = torch.minimum(j + step, hi - 1)
            j = torch.where(self.t[cand] <= q, cand, j)
            step //= 2
        w = ((q - self.t[j]) / (self.t[j + 1] - self.t[j])).clamp(0.0, 1.0).unsqueeze(-1)
        return self.u[j] + w * (self.u[j + 1] - self.u[j])

    def stages(self, t0: Tensor, dt: Tensor, steps: int, trajectory: Tensor) -> Tensor:
        """[steps, 3, m, p]: u at t0 + (s + c) dt/steps, c = 0, 1/2, 1, for rows t0 [m], dt [m] or [m, 1]."""
        t0, dt = t0.reshape(-1).to(torch.float64), dt.reshape(-1).to(torch.float64)
        frac = (torch.arange(steps, dtype=torch.float64).view(-1, 1) + torch.tensor([0.0, 0.5, 1.0])) / steps
        times = t0.view(1, 1, -1) + frac.unsqueeze(-1) * dt.view(1, 1, -1)  # [steps, 3, m]
        out = self.at(times.reshape(-1), trajectory.reshape(1, 1, -1).expand_as(times).reshape(-1))
        return out.view(steps, 3, -1, self.width)


def stages_or_none(
    signal: Optional[InputSignal], t0: Tensor, dt: Tensor, steps: int, trajectory: Tensor
) -> Optional[Tensor]:
    return None if signal is None else signal.stages(t0, dt, steps, trajectory)
