"""ODE-RNN and latent ODE with each series on its own times (times [B, N], per_sample solves):
every row equals the series solved alone on its own times (float64), gradients included."""

from __future__ import annotations

from typing import List

import pytest
import torch

from odeflow.data.irregular import Series, collate, collate_rows
from odeflow.gradients import OptimizeDiscretize
from odeflow.models.latent_ode import LatentODE
from odeflow.models.ode_solver import ODESolver, disc_opt
from odeflow.models.odernn import ODERNN
from odeflow.models.sequence_classifiers import make_sequence_classifier
from odeflow.models.timeseries import VectorFieldMLP
from odeflow.solvers.stepping import Adaptive

F64 = torch.float64
TIGHT = ODESolver("dopri5", Adaptive(rtol=1e-10, atol=1e-12))


def _batch(gen: torch.Generator, D: int = 3) -> List[Series]:
    """Series of random lengths (1..8) on random times in random spans, random masks."""
    out = []
    for _ in range(int(torch.randint(3, 7, (1,), generator=gen))):
        n = int(torch.randint(1, 9, (1,), generator=gen))
        start, span = float(torch.rand(1, generator=gen)), 0.5 + 2 * float(torch.rand(1, generator=gen))
        t = start + span * torch.sort(torch.rand(n, generator=gen, dtype=F64)).values
        t = t + 1e-3 * torch.arange(n, dtype=F64)  # strictly increasing
        mask = (torch.rand(n, D, generator=gen) < 0.6).to(F64)
        mask[:, int(torch.randint(0, D, (1,), generator=gen))] = 1.0
        out.append(Series(t, torch.randn(n, D, generator=gen, dtype=F64), mask))
    return out


def _core(hidden: int = 6, field: bool = True, solver: ODESolver = TIGHT) -> ODERNN:
    f = VectorFieldMLP(hidden, hidden=(12,), activation="tanh", transform="identity", dtype=F64) if field else None
    return ODERNN(3, hidden, f, delta_t_input=not field, update_every_time=not field, solver=solver).to(F64)


def test_collate_rows_pads_after_each_series_end() -> None:
    gen = torch.Generator().manual_seed(1)
    series = _batch(gen)
    b = collate_rows(series)
    assert b.lengths is not None and b.times.shape == (len(series), int(b.lengths.max()))
    assert bool((b.times[:, 1:] > b.times[:, :-1]).all())
    for i, s in enumerate(series):
        n = s.times.shape[0]
        assert int(b.lengths[i]) == n and torch.equal(b.times[i, :n], s.times)
        assert torch.equal(b.values[i, :n], s.values) and float(b.mask[i, n:].abs().sum()) == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("field", [True, False], ids=["ode-rnn", "rnn-dt"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_odernn_rows_equal_each_series_alone(seed: int, field: bool, reverse: bool) -> None:
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    series, core = _batch(gen), _core(field=field)
    b = collate_rows(series)
    t0 = b.times[:, 0] - torch.rand(b.times.shape[0], generator=gen, dtype=F64) if reverse else None
    rows = core(b.times, b.values, b.mask, reverse=reverse, t0=t0, lengths=b.lengths)
    for i, s in enumerate(series):
        alone_b, n = collate([s]), s.times.shape[0]
        alone = core(alone_b.times, alone_b.values, alone_b.mask, reverse=reverse, t0=None if t0 is None else t0[i])
        torch.testing.assert_close(rows.final[i], alone.final[0], rtol=0, atol=1e-10)
        torch.testing.assert_close(rows.after[:n, i], alone.after[:, 0], rtol=0, atol=1e-10)
        torch.testing.assert_close(rows.before[:n, i], alone.before[:, 0], rtol=0, atol=1e-10)


def test_rows_match_the_union_grid_when_series_share_times() -> None:
    """Series on the same times: the union grid and per-row solving are the same computation."""
    gen = torch.Generator().manual_seed(5)
    t = torch.sort(torch.rand(6, generator=gen, dtype=F64)).values * 3
    series = [Series(t, torch.randn(6, 3, generator=gen, dtype=F64), torch.ones(6, 3, dtype=F64)) for _ in range(4)]
    core = _core()
    union, rows = collate(series), collate_rows(series)
    a = core(union.times, union.values, union.mask, reverse=True, t0=union.times[0] - 0.5)
    r = core(rows.times, rows.values, rows.mask, reverse=True, t0=rows.times[:, 0] - 0.5, lengths=rows.lengths)
    torch.testing.assert_close(r.final, a.final, rtol=0, atol=1e-10)


@pytest.mark.parametrize("poisson", [False, True], ids=["plain", "poisson"])
@pytest.mark.parametrize("seed", [0, 3])
def test_latent_ode_rows_equal_each_series_alone(poisson: bool, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    series = _batch(gen)
    model = LatentODE(3, 4, 6, 12, poisson=poisson, decoder_solver=TIGHT, encoder_solver=TIGHT).to(F64)
    b = collate_rows(series)
    out = model(b.times, b.values, b.mask, n_samples=2, sample=False, lengths=b.lengths)
    for i, s in enumerate(series):
        a, n = collate([s]), s.times.shape[0]
        alone = model(a.times, a.values, a.mask, n_samples=2, sample=False)
        torch.testing.assert_close(out.q_mean[i], alone.q_mean[0], rtol=0, atol=1e-10)
        torch.testing.assert_close(out.mean[:, i, :n], alone.mean[:, 0], rtol=0, atol=1e-9)
        if poisson:
            assert out.integral is not None and alone.integral is not None
            assert out.log_intensity is not None and alone.log_intensity is not None
            torch.testing.assert_close(out.integral[:, i], alone.integral[:, 0], rtol=0, atol=1e-9)
            torch.testing.assert_close(out.log_intensity[:, i, :n], alone.log_intensity[:, 0], rtol=0, atol=1e-9)


def test_latent_decode_rows_from_an_earlier_t0() -> None:
    """Rows whose t0 lies before their first time start there; the others at their first time."""
    gen = torch.Generator().manual_seed(7)
    series = _batch(gen)
    model = LatentODE(3, 4, 6, 12, decoder_solver=TIGHT, encoder_solver=TIGHT).to(F64)
    b = collate_rows(series)
    B = b.times.shape[0]
    t0 = b.times[:, 0] - torch.where(torch.arange(B) % 2 == 0, 0.4, 0.0).to(F64)
    z0 = torch.randn(2, B, 4, generator=gen, dtype=F64)
    mean, *_ = model.decode(z0, b.times, t0)
    for i, s in enumerate(series):
        n = s.times.shape[0]
        alone, *_ = model.decode(z0[:, i : i + 1], s.times, t0[i])
        torch.testing.assert_close(mean[:, i, :n], alone[:, 0], rtol=0, atol=1e-9)


@pytest.mark.parametrize("kind", ["ode-rnn", "latent-ode"])
def test_classifier_gradients_per_row_equal_the_sum_over_series_alone(kind: str) -> None:
    gen = torch.Generator().manual_seed(11)
    torch.manual_seed(11)
    series = _batch(gen)
    model = make_sequence_classifier(kind, 3, 2, hidden=6, field_hidden=8, latent_dim=4, solver=TIGHT).to(F64)
    if kind == "latent-ode":
        model.latent.solver = TIGHT  # type: ignore[union-attr]
    w = torch.randn(len(series), 2, generator=gen, dtype=F64)
    b = collate_rows(series)
    model.zero_grad()
    (model(b.times, b.values, b.mask, b.lengths) * w).sum().backward()
    rows = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad()
    for i, s in enumerate(series):
        a = collate([s])
        (model(a.times, a.values, a.mask) * w[i]).sum().backward()
    alone = [p.grad for p in model.parameters() if p.grad is not None]
    assert len(rows) == len(alone) and any(float(g.abs().max()) > 0 for g in rows)
    for g_rows, g_alone in zip(rows, alone):
        torch.testing.assert_close(g_rows, g_alone, rtol=1e-8, atol=1e-10)


def test_per_row_adjoint_gradients_match_backprop() -> None:
    """OptimizeDiscretize(seminorm=True) on per-row solves: the encoder's gradients flow and
    approach backpropagation's at tight tolerances."""
    gen = torch.Generator().manual_seed(13)
    torch.manual_seed(13)
    series = _batch(gen)
    b = collate_rows(series)
    adj = ODESolver("dopri5", Adaptive(rtol=1e-10, atol=1e-12), OptimizeDiscretize(seminorm=True))
    core = _core(solver=adj)
    w = torch.randn(b.times.shape[0], 6, generator=gen, dtype=F64)
    (core(b.times, b.values, b.mask, lengths=b.lengths).final * w).sum().backward()
    g_adj = [p.grad.clone() for p in core.parameters()]
    core.zero_grad()
    core.solver = TIGHT
    (core(b.times, b.values, b.mask, lengths=b.lengths).final * w).sum().backward()
    for ga, gb in zip(g_adj, [p.grad for p in core.parameters()]):
        assert gb is not None
        torch.testing.assert_close(ga, gb, rtol=1e-6, atol=1e-8)


def test_fixed_steps_on_per_row_times_are_refused() -> None:
    series = _batch(torch.Generator().manual_seed(0))
    b = collate_rows(series)
    core = _core(solver=disc_opt("euler", 0.05))
    with pytest.raises(ValueError, match="adaptive step"):
        core(b.times, b.values, b.mask, lengths=b.lengths)


def test_bad_lengths_and_unsorted_rows_are_refused() -> None:
    b = collate_rows(_batch(torch.Generator().manual_seed(0)))
    core = _core()
    with pytest.raises(ValueError, match="lengths"):
        core(b.times, b.values, b.mask, lengths=b.lengths * 0)
    with pytest.raises(ValueError, match="strictly increasing"):
        core(b.times.flip(1), b.values, b.mask, lengths=b.lengths)
