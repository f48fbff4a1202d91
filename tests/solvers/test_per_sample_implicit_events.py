"""Terminal events per sample with implicit methods: every row of a random batch of stiff Van der Pol
oscillators stops at its own event, located on its step's cubic Hermite interpolant, with the
event time and the outputs before it equal to the shared-step implicit event solve of the sample
alone (1e-10 for the outputs, 1e-8 for the event time on the slow branch, float64), the same accepted steps, and the state at the event on the row's
interpolant (g = 0 there; the shared step's re-solve to t_e agrees within the local error); rows without an event,
per-sample time rows; gradients through each row's event time against central finite differences."""

import pytest
import torch

import odeflow
from helpers.batched_fields import assert_row_gradients_match_differences, vdp
from odeflow.solvers.events import Event
from odeflow.solvers.stepping import Adaptive

D = torch.float64
STEP = Adaptive(rtol=1e-6, atol=1e-8)


def level(c):
    """g = x - c: the first component crosses the level c (c per row, or 0-d alone)."""
    return lambda t, y: y[..., 0] - c


def family(batch: int, g: torch.Generator):
    """(mu, y0, levels): stiff for the larger mu; x creeps down the slow branch (x' ~ -x / (mu (x^2 - 1)))
    to a level a little below x0, reached late or not at all for the larger mu; about one row in
    four has a level it never reaches."""
    mu = 1 + 30 * torch.rand(batch, generator=g, dtype=D)
    y0 = torch.stack([1.5 + torch.rand(batch, generator=g, dtype=D), torch.zeros(batch, dtype=D)], -1)
    c = y0[:, 0] - 0.02 - 0.1 * torch.rand(batch, generator=g, dtype=D)
    c = torch.where(torch.rand(batch, generator=g) < 0.25, torch.full_like(c, -5.0), c)
    return mu, y0, c


@pytest.mark.parametrize(
    "method, time_rows, batch, span",
    [("radauIIA5", False, 4, 1.5), pytest.param("sdirk2", True, 6, 4.0, marks=pytest.mark.slow)],
)
def test_each_row_stops_at_its_own_implicit_event(method, time_rows, batch, span):
    g = torch.Generator().manual_seed(7 + len(method))
    mu, y0, c = family(batch, g)
    t = torch.linspace(0, span, 9, dtype=D)
    if time_rows:  # every row its own output times: from its own start over its own span
        t = torch.stack([0.3 * b + torch.linspace(0, span * (0.5 + 0.5 * b / batch), 9, dtype=D) for b in range(batch)])
    step = STEP if time_rows else Adaptive(rtol=1e-5, atol=1e-7)
    sol = odeflow.solve(vdp(mu), y0, t, method=method, step=step, per_sample=True, events=Event(level(c), direction=-1))
    hits = 0
    for b in range(batch):
        t_b = t if t.dim() == 1 else t[b]
        ref = odeflow.solve(
            vdp(mu[b]), y0[b : b + 1], t_b, method=method, step=step, events=Event(level(c[b]), direction=-1)
        )
        assert int(sol.stats.per_sample.accepted[b]) == ref.stats.accepted
        if ref.status != "event":
            assert not bool(sol.stats.event_hit[b]) and torch.isnan(sol.event_t[b])
            torch.testing.assert_close(sol.ys[:, b], ref.ys[:, 0], rtol=1e-10, atol=1e-10)
            continue
        hits += 1
        assert bool(sol.stats.event_hit[b])
        k = len(ref.ts) - 1  # outputs strictly before the event
        # The states agree within 1e-10 (the batched Newton's rounding differs from the single
        # sample's), the event times within that over |dg/dt| = |x'|, small on the slow branch.
        assert float(ref.event_t) <= float(t_b[-1])  # never a root past the last time
        torch.testing.assert_close(sol.event_t[b], ref.event_t.to(D), rtol=1e-8, atol=1e-8)
        torch.testing.assert_close(sol.ys[:k, b], ref.ys[:k, 0], rtol=1e-10, atol=1e-10)
        # From the event on, every output holds the state at the event: the row's interpolant at
        # t_e (its event function is zero there); the shared step solves again up to t_e, whose
        # last step differs, so the two agree within the local error only.
        held = sol.ys[k:, b]
        torch.testing.assert_close(held, sol.ys[-1, b].expand_as(held), rtol=0, atol=0)
        torch.testing.assert_close(held[0], ref.ys[-1, 0], rtol=1e-5, atol=1e-6)
        assert abs(float(held[0, 0] - c[b])) < 1e-9
    assert sol.status == "event" and 0 < hits == int(sol.stats.event_hit.sum())


@pytest.mark.slow
def test_gradients_through_implicit_event_times_match_finite_differences():
    g = torch.Generator().manual_seed(3)
    batch = 3
    mu = torch.tensor([2.0, 5.0, 10.0], dtype=D)
    y0 = torch.stack([1.8 + 0.05 * torch.rand(batch, generator=g, dtype=D), torch.zeros(batch, dtype=D)], -1)
    c = torch.tensor([1.2, 1.4, 1.6], dtype=D)  # reached on the slow branch, at t = 1 to 2.2
    t = torch.linspace(0, 3, 7, dtype=D)
    step = Adaptive(rtol=1e-9, atol=1e-11)
    w = torch.randn(7, batch, 2, generator=g, dtype=D)

    def loss(m, y):
        sol = odeflow.solve(
            vdp(m), y, t, method="radauIIA5", step=step, per_sample=True, events=Event(level(c), direction=-1)
        )
        assert bool(sol.stats.event_hit.all())
        return (sol.event_t**2).sum() + (sol.ys * w).sum()

    m = mu.clone().requires_grad_()
    y = y0.clone().requires_grad_()
    gm, gy = torch.autograd.grad(loss(m, y), (m, y))
    assert_row_gradients_match_differences(loss, mu, y0, gm, gy, component=0, rtol=1e-4)
