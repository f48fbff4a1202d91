"""Terminal events per sample (solve(..., per_sample=True, events=...)): every row of a random batch
stops at its own event with the event time, the outputs before it and the state there equal to the
shared-step event solve of the sample alone (1e-10, float64), the same accepted steps; gradients
through each row's event time against the sample alone and central finite differences; rows without
an event, backward time rows, several event components, compaction and clear errors."""

import pytest
import torch

import odeflow
from helpers.batched_fields import vdp
from odeflow.gradients import OptimizeDiscretize
from odeflow.solvers.events import Event
from odeflow.solvers.per_sample import PerSample
from odeflow.solvers.stepping import Adaptive

D = torch.float64
STEP = Adaptive(rtol=1e-8, atol=1e-10)


def damped(a):
    """A damped forced linear oscillator y' = A y + (0, sin t), a random stable A per row."""

    def f(t, y):
        return (a @ y.unsqueeze(-1)).squeeze(-1) + torch.stack([torch.zeros_like(t), torch.sin(t)], -1).expand_as(y)

    return f


def level(c):
    """g = x - c: the first component crosses the level c (c per row, or 0-d alone)."""
    return lambda t, y: y[..., 0] - c


def family(kind: str, batch: int, g: torch.Generator):
    """(field, field of sample b alone, y0, levels) of one random family; about one row in four has
    a level it never reaches (no event)."""
    if kind == "vdp":
        mu = 0.5 + 4 * torch.rand(batch, generator=g, dtype=D)
        y0 = torch.stack([1.5 + torch.rand(batch, generator=g, dtype=D), torch.zeros(batch, dtype=D)], -1)
        c = 0.6 * torch.rand(batch, generator=g, dtype=D) - 0.3
        c = torch.where(torch.rand(batch, generator=g) < 0.25, torch.full_like(c, -5.0), c)  # never reached
        return vdp(mu), lambda b: vdp(mu[b]), y0, c
    a = 0.5 * torch.randn(batch, 2, 2, generator=g, dtype=D) - 0.3 * torch.eye(2, dtype=D)
    a[:, 0, 1] += 1.0
    a[:, 1, 0] -= 1.0  # rotation plus a little damping
    y0 = torch.stack([1 + torch.rand(batch, generator=g, dtype=D), torch.randn(batch, generator=g, dtype=D)], -1)
    c = 0.5 * torch.rand(batch, generator=g, dtype=D)
    c = torch.where(torch.rand(batch, generator=g) < 0.25, torch.full_like(c, -50.0), c)
    return damped(a), lambda b: damped(a[b]), y0, c


def compare_with_alone(sol, f_alone, y0, c, t, method, direction, step=STEP, tol=1e-10):
    """Row b against the shared-step event solve of sample b alone."""
    for b in range(y0.shape[0]):
        t_b = t if t.dim() == 1 else t[b]
        ref = odeflow.solve(
            f_alone(b), y0[b : b + 1], t_b, method=method, step=step, events=Event(level(c[b]), direction=direction)
        )
        if ref.status != "event":
            assert not bool(sol.stats.event_hit[b]) and torch.isnan(sol.event_t[b])
            torch.testing.assert_close(sol.ys[:, b], ref.ys[:, 0], rtol=tol, atol=tol)
            assert int(sol.stats.per_sample.accepted[b]) == ref.stats.accepted
            continue
        assert bool(sol.stats.event_hit[b])
        k = len(ref.ts) - 1  # outputs strictly before the event
        torch.testing.assert_close(sol.event_t[b], ref.event_t.to(D), rtol=tol, atol=tol)
        torch.testing.assert_close(sol.ys[:k, b], ref.ys[:k, 0], rtol=tol, atol=tol)
        # From the event on, every output holds the state at the event.
        torch.testing.assert_close(sol.ys[k:, b], ref.ys[-1, 0].expand_as(sol.ys[k:, b]), rtol=tol, atol=tol)
        assert int(sol.stats.per_sample.accepted[b]) == ref.stats.accepted


@pytest.mark.parametrize("method", ["dopri5", "tsit5", "bosh3"])
@pytest.mark.parametrize("kind", ["vdp", "damped"])
def test_each_row_stops_at_its_own_event(kind, method):
    g = torch.Generator().manual_seed(100 + 7 * ["vdp", "damped"].index(kind) + len(method))
    f, f_alone, y0, c = family(kind, 8, g)
    t = torch.linspace(0, 8, 17, dtype=D)
    direction = -1 if kind == "vdp" else 0
    step = STEP if method != "bosh3" else Adaptive(rtol=1e-6, atol=1e-8)
    sol = odeflow.solve(
        f, y0, t, method=method, step=step, per_sample=True, events=Event(level(c), direction=direction)
    )
    hit = sol.stats.event_hit
    assert sol.status == "event" and bool(hit.any())
    assert len(set(sol.event_t[hit].tolist())) == int(hit.sum())  # every row its own event time
    compare_with_alone(sol, f_alone, y0, c, t, method, direction, step)


def test_backward_and_per_sample_time_rows():
    g = torch.Generator().manual_seed(21)
    f, f_alone, y0, c = family("damped", 6, g)
    rows = []
    for b in range(6):
        end = 3 + 5 * torch.rand((), generator=g, dtype=D)
        row = torch.linspace(0, float(end), 9, dtype=D)
        rows.append(-row if b % 2 else row)  # odd rows integrate backwards in time
    t = torch.stack(rows)
    sol = odeflow.solve(f, y0, t, step=STEP, per_sample=True, events=Event(level(c)))
    assert bool(sol.stats.event_hit.any())
    compare_with_alone(sol, f_alone, y0, c, t, "dopri5", 0)


def test_gradients_through_each_event_time():
    g = torch.Generator().manual_seed(5)
    batch = 3
    mu = (0.5 + 3 * torch.rand(batch, generator=g, dtype=D)).requires_grad_()
    y0 = torch.stack([1.5 + torch.rand(batch, generator=g, dtype=D), torch.zeros(batch, dtype=D)], -1)
    y0 = y0.requires_grad_()
    c = 0.5 * torch.rand(batch, generator=g, dtype=D) - 0.25
    c[-1] = -5.0  # the last row never stops: its gradient is that of the plain solve
    t = torch.linspace(0, 5, 11, dtype=D)
    step = Adaptive(rtol=1e-9, atol=1e-11)
    w = torch.randn(11, batch, 2, generator=g, dtype=D)
    wt = torch.randn(batch, generator=g, dtype=D)

    def loss(mu_, y0_):  # one loss per row (rows are independent)
        sol = odeflow.solve(vdp(mu_), y0_, t, step=step, per_sample=True, events=Event(level(c), direction=-1))
        return (sol.ys * w).sum(dim=(0, 2)) + torch.nan_to_num(sol.event_t * wt)

    gmu, gy0 = torch.autograd.grad(loss(mu, y0).sum(), (mu, y0))
    for b in range(batch):
        m, y = mu[b].detach().clone().requires_grad_(), y0[b : b + 1].detach().clone().requires_grad_()
        ref = odeflow.solve(vdp(m), y, t, step=step, events=Event(level(c[b]), direction=-1))
        k = len(ref.ts)
        if ref.status == "event":  # the held outputs all equal the state at the event
            wb = torch.cat([w[: k - 1, b], w[k - 1 :, b].sum(0, keepdim=True)])
            ref_loss = (ref.ys[:, 0] * wb).sum() + ref.event_t * wt[b]
        else:
            ref_loss = (ref.ys[:, 0] * w[:, b]).sum()
        rm, ry = torch.autograd.grad(ref_loss, (m, y))
        torch.testing.assert_close(gmu[b], rm, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(gy0[b], ry[0], rtol=1e-10, atol=1e-10)
    eps = 1e-6
    with torch.no_grad():  # every row perturbed at once: each row's loss sees only its own
        fd = (loss(mu + eps, y0) - loss(mu - eps, y0)) / (2 * eps)
        torch.testing.assert_close(gmu, fd, rtol=1e-5, atol=1e-6)
        e = torch.zeros(batch, 2, dtype=D)
        e[:, 0] = eps
        fd = (loss(mu, y0 + e) - loss(mu, y0 - e)) / (2 * eps)
        torch.testing.assert_close(gy0[:, 0], fd, rtol=1e-5, atol=1e-6)


def test_event_time_gradient_against_finite_differences():
    # dt_e/dy0 of every row alone, in a loss of the event times only.
    g = torch.Generator().manual_seed(9)
    f, _, y0, c = family("damped", 5, g)
    c = c.clamp_min(0.0)  # every row reaches its level
    y0 = y0.requires_grad_()
    t = torch.linspace(0, 10, 3, dtype=D)
    step = Adaptive(rtol=1e-11, atol=1e-12)

    def event_times(y0_):
        return odeflow.solve(f, y0_, t, step=step, per_sample=True, events=Event(level(c), direction=-1)).event_t

    te = event_times(y0)
    assert bool(torch.isfinite(te).all())
    (grad,) = torch.autograd.grad(te.sum(), y0)
    eps = 1e-6
    with torch.no_grad():
        for j in range(2):
            e = torch.zeros_like(y0)
            e[:, j] = eps  # rows are independent: one perturbation of every row at once
            fd = (event_times(y0 + e) - event_times(y0 - e)) / (2 * eps)
            torch.testing.assert_close(grad[:, j], fd, rtol=1e-6, atol=1e-7)


def test_several_components_the_earliest_root_wins():
    g = torch.Generator().manual_seed(13)
    f, f_alone, y0, c = family("vdp", 6, g)
    t = torch.linspace(0, 8, 9, dtype=D)
    hi = c + 1.0

    def two(t_, y):  # [B, 2]: reach c going down, or hi going up, whichever comes first
        return torch.stack([y[..., 0] - c, hi - y[..., 0]], -1)

    sol = odeflow.solve(f, y0, t, step=STEP, per_sample=True, events=Event(two, direction=-1))
    for b in range(6):
        ref = odeflow.solve(
            f_alone(b),
            y0[b : b + 1],
            t,
            step=STEP,
            events=Event(lambda t_, y, b=b: torch.stack([y[..., 0] - c[b], hi[b] - y[..., 0]], -1), direction=-1),
        )
        assert (ref.status == "event") == bool(sol.stats.event_hit[b])
        if ref.status == "event":
            torch.testing.assert_close(sol.event_t[b], ref.event_t.to(D), rtol=1e-10, atol=1e-10)
            torch.testing.assert_close(sol.ys[-1, b], ref.ys[-1, 0], rtol=1e-10, atol=1e-10)


def test_compaction_with_events_changes_nothing():
    g = torch.Generator().manual_seed(17)
    mu = (0.5 + 4 * torch.rand(8, generator=g, dtype=D)).requires_grad_()
    y0 = torch.stack([1.5 + torch.rand(8, generator=g, dtype=D), torch.zeros(8, dtype=D)], -1)
    c = 0.6 * torch.rand(8, generator=g, dtype=D) - 0.3
    t = torch.linspace(0, 8, 9, dtype=D)

    def f(tt, y, rows=None):
        return vdp(mu if rows is None else mu[rows])(tt, y)

    def ev(tt, y, rows=None):
        return y[..., 0] - (c if rows is None else c[rows])

    full = odeflow.solve(f, y0, t, step=STEP, per_sample=True, events=Event(ev, direction=-1))
    comp = odeflow.solve(f, y0, t, step=STEP, per_sample=PerSample(compact=0.9), events=Event(ev, direction=-1))
    assert int(comp.stats.per_sample.nfe.min()) < comp.stats.nfe  # rows stopped costing work
    torch.testing.assert_close(comp.ys, full.ys, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(comp.event_t, full.event_t, rtol=1e-12, atol=1e-12, equal_nan=True)
    ga = torch.autograd.grad(full.ys.sum() + full.event_t.nansum(), mu)[0]
    gb = torch.autograd.grad(comp.ys.sum() + comp.event_t.nansum(), mu)[0]
    torch.testing.assert_close(ga, gb, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(events=Event(level(0.0), terminal=False)), "terminal events only"),
        (dict(events=level(0.0), method="dopri8"), "dopri8"),
        (dict(events=level(0.0), gradient=OptimizeDiscretize(params=())), "events with OptimizeDiscretize"),
        (dict(events=lambda t, y: y.sum()), r"\[batch\] or \[batch, K\]"),
        (dict(events=[]), "empty"),
        (dict(events=level(0.0), t=torch.zeros(1, dtype=D)), "at least two times"),
        (dict(events=level(0.0), t=torch.zeros(1, dtype=D), method="radauIIA5"), "at least two times"),
    ],
)
def test_unsupported_event_input_raises_a_clear_error(kwargs, match):
    args = dict(func=vdp(torch.ones(2, dtype=D)), y0=torch.ones(2, 2, dtype=D), t=torch.linspace(0, 1, 3, dtype=D))
    args.update(per_sample=True)
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        odeflow.solve(**args)


def test_float32_event_times_close_to_float64():
    g = torch.Generator().manual_seed(23)
    f, _, y0, c = family("damped", 5, g)
    t = torch.linspace(0, 8, 9, dtype=D)
    step = Adaptive(rtol=1e-5, atol=1e-6)
    ref = odeflow.solve(f, y0, t, step=step, per_sample=True, events=Event(level(c)))
    assert ref.stats.event_hit.any()
    f32 = lambda tt, y: f(tt.double(), y.double()).float()  # noqa: E731  (the same field in float32)
    sol = odeflow.solve(f32, y0.float(), t.float(), step=step, per_sample=True, events=Event(level(c.float())))
    assert sol.ys.dtype == torch.float32
    assert torch.equal(sol.stats.event_hit, ref.stats.event_hit)
    torch.testing.assert_close(sol.event_t, ref.event_t, rtol=1e-4, atol=1e-4, equal_nan=True)


@pytest.mark.parametrize("method", ["dopri5", "radauIIA5"])
def test_a_root_past_a_rows_last_time_is_not_its_event(method):
    """y' = a_b (no error: large steps that overshoot): rows whose root lies past their own last
    time have no event (NaN) and end at that time; the others stop at their root."""
    g = torch.Generator().manual_seed(3)
    a = 0.2 + 2 * torch.rand(6, generator=g, dtype=torch.float64)
    ends = 0.5 + torch.rand(6, generator=g, dtype=torch.float64)
    shift = 0.02 + 0.3 * torch.rand(6, generator=g, dtype=torch.float64)
    past = torch.arange(6) % 2 == 0
    t_root = torch.where(past, ends * (1 + shift), ends * (1 - shift))
    t = torch.stack([torch.zeros(6, dtype=torch.float64), ends], dim=1)
    sol = odeflow.solve(lambda t, y: a[:, None] * torch.ones_like(y), torch.zeros(6, 1, dtype=torch.float64), t,
                        method=method, step=odeflow.Adaptive(rtol=1e-6, atol=1e-8),
                        events=odeflow.Event(lambda t, y: y[:, 0] - a * t_root), per_sample=True)  # fmt: skip
    assert torch.equal(sol.stats.event_hit, ~past)
    assert torch.isnan(sol.event_t[past]).all()
    assert torch.allclose(sol.event_t[~past], t_root[~past], atol=1e-8)
    assert torch.allclose(sol.ys[-1, past, 0], a[past] * ends[past], atol=1e-8)
