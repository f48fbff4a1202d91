"""GRU baselines for irregular series that step only at a series' own observations.

GRU-Δt:  h_i = GRU([x_i ⊙ m_i, m_i, Δt_i], h_{i-1}),  Δt_i = time since the series' previous
         observation.
GRU-D (Che et al. 2018, "Recurrent neural networks for multivariate time series with missing
values"): with δ_i^d the time since variable d was last observed,
    γ_x = exp(-max(0, w_x ⊙ δ_i + b_x)),  γ_h = exp(-max(0, W_h δ_i + b_h)),
    x̂_i^d = m_i^d x_i^d + (1 - m_i^d) (γ_x^d x_last^d + (1 - γ_x^d) x̄^d),
    h_i = GRU([x̂_i, m_i], γ_h ⊙ h_{i-1}),
x̄ the empirical mean of each variable (0 for normalised data, the default).

Input as for ODERNN: a batch on the union grid, times [T], values/mask [B, T, D]. A series whose
mask is empty at a grid time is left untouched there, so its state does not depend on the
other series of the batch. `forward` returns the final state [B, H].
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .odernn import check_series

KINDS = ("gru-dt", "gru-d")


class ObservationGRU(nn.Module):
    mean: Tensor  # gru-d: the training means (a buffer)

    def __init__(self, input_dim: int, hidden_dim: int, kind: str = "gru-d", mean: Optional[Tensor] = None) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"unknown GRU kind {kind!r}; valid: {', '.join(KINDS)}")
        if input_dim < 1 or hidden_dim < 1:
            raise ValueError(f"input_dim and hidden_dim must be >= 1; got {input_dim}, {hidden_dim}")
        self.kind, self.input_dim, self.hidden_dim = kind, input_dim, hidden_dim
        self.cell = nn.GRUCell(2 * input_dim + int(kind == "gru-dt"), hidden_dim)
        if kind == "gru-d":
            self.decay_x_w = nn.Parameter(torch.zeros(input_dim))
            self.decay_x_b = nn.Parameter(torch.zeros(input_dim))
            self.decay_h = nn.Linear(input_dim, hidden_dim)
            self.register_buffer("mean", torch.zeros(input_dim) if mean is None else mean.detach().clone())

    def forward(self, times: Tensor, values: Tensor, mask: Tensor) -> Tensor:
        check_series(times, values, mask)
        values = torch.where(mask > 0, values, torch.zeros_like(values))
        mask = mask.to(values.dtype)
        B, T, D = values.shape
        h = values.new_zeros(B, self.hidden_dim)
        started = torch.zeros(B, 1, dtype=torch.bool, device=values.device)
        last_t = times[0].expand(B, 1).clone().to(values.dtype)  # series' previous observation
        last_var_t = times[0].expand(B, D).clone().to(values.dtype)  # per variable
        x_last: Optional[Tensor] = self.mean.expand(B, D).clone() if self.kind == "gru-d" else None
        for i in range(T):
            m = mask[:, i]
            seen = m.sum(-1, keepdim=True) > 0
            t = times[i].to(values.dtype)
            if self.kind == "gru-dt":
                dt = torch.where(started, t - last_t, torch.zeros_like(last_t))
                h_new = self.cell(torch.cat([values[:, i] * m, m, dt], -1), h)
            else:
                assert x_last is not None  # gru-d keeps the last observed values
                delta = t - last_var_t  # [B, D]
                gx = torch.exp(-F.relu(self.decay_x_w * delta + self.decay_x_b))
                gh = torch.exp(-F.relu(self.decay_h(delta)))
                x_hat = m * values[:, i] + (1 - m) * (gx * x_last + (1 - gx) * self.mean)
                h_new = self.cell(torch.cat([x_hat, m], -1), gh * h)
                x_last = torch.where(m > 0, values[:, i], x_last)
                last_var_t = torch.where(m > 0, t.expand(B, D), last_var_t)
            h = torch.where(seen, h_new, h)
            last_t = torch.where(seen, t.expand(B, 1), last_t)
            started = started | seen
        return h
