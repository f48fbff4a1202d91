"""ODE-RNN and RNN-Δt for irregularly-sampled series (Rubanova et al. 2019; seed 002 §latent ODEs).

A batch of series shares one sorted time grid t_1 < ... < t_T (the union of their times);
values [B, T, D] come with a mask [B, T, D] (1 = observed). Between grid times the hidden state

    ODE-RNN:  h(t_i^-) = ODESolve(f_h, h(t_{i-1}), t_{i-1} -> t_i)       (Δt enters through the solve)
    RNN-Δt:   h(t_i^-) = GRU([0, 0, Δt_i], h(t_{i-1}))                    (Δt as an input)

and at t_i, for series with at least one observed variable,

    h(t_i) = GRU([x_i ⊙ m_i, m_i (, Δt_i)], h(t_i^-)),

else h(t_i) = h(t_i^-) (ODE-RNN) or the same GRU step with a zero mask (RNN-Δt, which steps at
every grid time). Missing variables enter only through x ⊙ m and the mask channels, so a masked
value cannot change the hidden state. ``reverse=True`` runs from t_T down to t_1 (the latent-ODE
encoder), then evolves to ``t0`` when it lies before t_1. With times [B, N] (each series on its
own times, `data.irregular.collate_rows`) every row runs on its own times and adaptive steps
(`odernn_rows`).
"""

from __future__ import annotations

from typing import List, Optional

import torch
from torch import Tensor, nn

from .ode_solver import ODESolver, disc_opt
from .odernn_rows import RecurrentStates, check_rows, run_rows


def check_series(times: Tensor, values: Tensor, mask: Tensor, lengths: Optional[Tensor] = None) -> None:
    """Shapes: times [T] strictly increasing (or [B, N], one row per series), values and mask [B, T, D]."""
    if times.dim() == 2:
        check_rows(times, values, mask, lengths)
        return
    if times.dim() != 1:
        raise ValueError(
            f"times must be [T] (the union grid) or [B, N] (each series its own); got {tuple(times.shape)}"
        )
    if values.dim() != 3 or values.shape[1] != times.shape[0]:
        raise ValueError(f"values must be [batch, T={times.shape[0]}, variables]; got {tuple(values.shape)}")
    if mask.shape != values.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} must equal values shape {tuple(values.shape)}")
    if times.numel() > 1 and not bool((times[1:] > times[:-1]).all()):
        raise ValueError("times must be strictly increasing (the union of the batch's times, sorted)")


class ODERNN(nn.Module):
    """Recurrent core shared by ODE-RNN (field given) and RNN-Δt (field None).

    field: an nn.Module f(t, h) -> dh/dt on [B, H] (e.g. VectorFieldMLP(H, transform='identity')),
    or None for a plain GRU whose state does not move between observations.
    delta_t_input: append Δt (time since the previous grid time) to the GRU input.
    update_every_time: apply the GRU at every grid time, observed or not (RNN-Δt).
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        field: Optional[nn.Module] = None,
        delta_t_input: bool = False,
        update_every_time: bool = False,
        solver: Optional[ODESolver] = None,
    ) -> None:
        super().__init__()
        if input_dim < 1 or hidden_dim < 1:
            raise ValueError(f"input_dim and hidden_dim must be >= 1; got {input_dim}, {hidden_dim}")
        self.input_dim, self.hidden_dim = input_dim, hidden_dim
        self.field = field
        self.delta_t_input = delta_t_input
        self.update_every_time = update_every_time
        self.solver = solver or disc_opt("euler", h=0.05)
        self.cell = nn.GRUCell(2 * input_dim + int(delta_t_input), hidden_dim)

    def _input(self, x: Tensor, m: Tensor, dt: Tensor) -> Tensor:
        parts = [x * m, m]
        if self.delta_t_input:
            parts.append(dt.expand(x.shape[0], 1).to(x.dtype))
        return torch.cat(parts, dim=-1)

    def _evolve(self, h: Tensor, t_from: Tensor, t_to: Tensor) -> Tensor:
        if self.field is None:
            return h
        return self.solver(self.field, h, torch.stack([t_from, t_to]))[-1]

    def forward(
        self,
        times: Tensor,
        values: Tensor,
        mask: Tensor,
        reverse: bool = False,
        t0: Optional[Tensor] = None,
        h0: Optional[Tensor] = None,
        lengths: Optional[Tensor] = None,
    ) -> RecurrentStates:
        """times [T] (the union grid) or [B, N] with `lengths` [B] (each series on its own times)."""
        if times.dim() == 2:
            return run_rows(self, times, values, mask, reverse, t0, h0, lengths)
        check_series(times, values, mask)
        values = torch.where(mask > 0, values, torch.zeros_like(values))  # NaN-safe: missing never enters
        mask = mask.to(values.dtype)
        B, T, _ = values.shape
        h = h0 if h0 is not None else values.new_zeros(B, self.hidden_dim)
        order = range(T - 1, -1, -1) if reverse else range(T)
        before: List[Tensor] = [h] * T  # each slot is filled in time order below
        after: List[Tensor] = [h] * T
        prev: Optional[int] = None
        zeros = values.new_zeros(B, self.input_dim)
        for i in order:
            dt = (times[i] - times[prev]).abs() if prev is not None else times.new_zeros(())
            if prev is not None:
                h = self._evolve(h, times[prev], times[i])
            if self.update_every_time:
                # The blind step: what the GRU makes of the gap alone (no value seen yet).
                h_minus = self.cell(self._input(zeros, zeros, dt.reshape(1, 1)), h)
            else:
                h_minus = h
            before[i] = h_minus
            m = mask[:, i]
            h_obs = self.cell(self._input(values[:, i], m, dt.reshape(1, 1)), h)
            seen = (m.sum(-1, keepdim=True) > 0) | self.update_every_time
            h = torch.where(seen, h_obs, h_minus)
            after[i] = h
            prev = i
        if reverse and t0 is not None and bool(t0 < times[0]):
            h = self._evolve(h, times[0], t0)
        return RecurrentStates(torch.stack(before), torch.stack(after), h)


class RecurrentRegressor(nn.Module):
    """ODE-RNN or RNN-Δt as a predictive model: x̂(t_i) = W h(t_i^-) + b, i.e. a prediction at t_i
    uses the observations strictly before t_i and the gap to t_i (never x_i itself)."""

    def __init__(self, core: ODERNN, output_dim: int) -> None:
        super().__init__()
        self.core = core
        self.decoder = nn.Linear(core.hidden_dim, output_dim)

    def forward(self, times: Tensor, values: Tensor, mask: Tensor, lengths: Optional[Tensor] = None) -> Tensor:
        """Predictions [B, T, D] at every grid time from the observations in (values, mask)."""
        states = self.core(times, values, mask, lengths=lengths)
        return self.decoder(states.before).transpose(0, 1)

    def encode(self, times: Tensor, values: Tensor, mask: Tensor, lengths: Optional[Tensor] = None) -> Tensor:
        """The last hidden state [B, H] (a summary of the series, e.g. for a classifier)."""
        return self.core(times, values, mask, lengths=lengths).final


def make_ode_rnn(
    input_dim: int, hidden_dim: int = 20, field_hidden: int = 50, solver: Optional[ODESolver] = None
) -> RecurrentRegressor:
    """ODE-RNN: GRU updates at observations, an autonomous MLP ODE on h between them."""
    from .timeseries import VectorFieldMLP

    field = VectorFieldMLP(hidden_dim, hidden=(field_hidden,), activation="tanh", transform="identity")
    return RecurrentRegressor(ODERNN(input_dim, hidden_dim, field, solver=solver), input_dim)


def make_rnn_dt(input_dim: int, hidden_dim: int = 20) -> RecurrentRegressor:
    """RNN-Δt baseline: a GRU stepping at every grid time with input [x ⊙ m, m, Δt]."""
    return RecurrentRegressor(
        ODERNN(input_dim, hidden_dim, None, delta_t_input=True, update_every_time=True), input_dim
    )
