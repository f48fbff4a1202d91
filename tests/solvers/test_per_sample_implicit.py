"""Adaptive implicit Runge–Kutta methods with per-sample steps: every row of a random batch of stiff
Van der Pol oscillators and random linear systems takes the steps it takes alone with the
shared-step implicit solver (same accepted/rejected counts, values within 1e-10 in float64),
backward and per-sample time rows, gradients through the steps against each sample alone and
finite differences, and clear errors for what is not supported with implicit methods."""

import pytest
import torch

import odeflow
from helpers.batched_fields import vdp
from odeflow.gradients import OptimizeDiscretize
from odeflow.solvers.per_sample import PerSample
from odeflow.solvers.stepping import Adaptive

D = torch.float64
STEP = Adaptive(rtol=1e-5, atol=1e-7)


def forced_linear(a):
    def f(t, y):
        return (a @ y.unsqueeze(-1)).squeeze(-1) + torch.cos(t)[..., None]

    return f


def family(kind, batch, g):
    if kind == "vdp":  # stiff for the larger mu
        mu = 1 + 30 * torch.rand(batch, generator=g, dtype=D)
        y0 = torch.stack([1.5 + torch.rand(batch, generator=g, dtype=D), torch.zeros(batch, dtype=D)], -1)
        return vdp(mu), lambda b: vdp(mu[b]), y0
    # eigenvalues spread over decades: stiffness differs from row to row
    q = torch.linalg.qr(torch.randn(batch, 3, 3, generator=g, dtype=D)).Q
    lam = -(10 ** (2 * torch.rand(batch, 3, generator=g, dtype=D)))
    a = q @ torch.diag_embed(lam) @ q.transpose(1, 2)
    return forced_linear(a), lambda b: forced_linear(a[b]), torch.randn(batch, 3, generator=g, dtype=D)


CASES = [("vdp", m) for m in ("radauIIA5", "radauIIA3", "sdirk2", "trbdf2")] + [("linear", "radauIIA5")]
SLOW = [pytest.param("linear", m, marks=pytest.mark.slow) for m in ("radauIIA3", "sdirk2", "trbdf2")]


@pytest.mark.parametrize("kind, method", CASES + SLOW)
def test_each_row_takes_the_implicit_steps_it_takes_alone(kind, method):
    g = torch.Generator().manual_seed(60 + len(method) + 5 * len(kind))
    batch = 4
    f, f_alone, y0 = family(kind, batch, g)
    t = torch.linspace(0, 1 if kind == "vdp" else 0.4, 5, dtype=D)
    sol = odeflow.solve(f, y0, t, method=method, step=STEP, per_sample=True)
    counts = sol.stats.per_sample
    for b in range(batch):
        ref = odeflow.solve(f_alone(b), y0[b : b + 1], t, method=method, step=STEP)
        assert int(counts.accepted[b]) == ref.stats.accepted
        assert int(counts.rejected[b]) == ref.stats.rejected
        torch.testing.assert_close(sol.ys[:, b], ref.ys[:, 0], rtol=1e-10, atol=1e-10)
    assert len(set(counts.accepted.tolist())) > 1


def test_implicit_time_rows_forward_and_backward():
    g = torch.Generator().manual_seed(2)
    f, f_alone, y0 = family("linear", 4, g)
    rows = []
    for b in range(4):
        row = torch.cat([torch.zeros(1, dtype=D), torch.sort(0.1 + 0.5 * torch.rand(3, generator=g, dtype=D)).values])
        rows.append(-row if b % 2 else row)
    t = torch.stack(rows)
    sol = odeflow.solve(f, y0, t, method="radauIIA5", step=STEP, per_sample=True)
    for b in range(4):
        ref = odeflow.solve(f_alone(b), y0[b : b + 1], t[b], method="radauIIA5", step=STEP)
        assert int(sol.stats.per_sample.accepted[b]) == ref.stats.accepted
        torch.testing.assert_close(sol.ys[:, b], ref.ys[:, 0], rtol=1e-10, atol=1e-10)


def test_implicit_gradients_match_each_sample_alone_and_finite_differences():
    g = torch.Generator().manual_seed(4)
    batch = 3
    mu = (1 + 20 * torch.rand(batch, generator=g, dtype=D)).requires_grad_()
    y0 = torch.stack([1.5 + torch.rand(batch, generator=g, dtype=D), torch.zeros(batch, dtype=D)], -1)
    y0 = y0.requires_grad_()
    t = torch.linspace(0, 0.3, 4, dtype=D)
    step = Adaptive(rtol=1e-6, atol=1e-8)
    w = torch.randn(4, batch, 2, generator=g, dtype=D)

    def losses(mu_, y0_):
        return (odeflow.solve(vdp(mu_), y0_, t, method="radauIIA5", step=step, per_sample=True).ys * w).sum(dim=(0, 2))

    gmu, gy0 = torch.autograd.grad(losses(mu, y0).sum(), (mu, y0))
    for b in range(batch):
        m, y = mu[b].detach().clone().requires_grad_(), y0[b : b + 1].detach().clone().requires_grad_()
        ref = (odeflow.solve(vdp(m), y, t, method="radauIIA5", step=step).ys[:, 0] * w[:, b]).sum()
        rm, ry = torch.autograd.grad(ref, (m, y))
        torch.testing.assert_close(gmu[b], rm, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(gy0[b], ry[0], rtol=1e-10, atol=1e-10)
    eps = 1e-6
    with torch.no_grad():  # each row's loss sees only its own perturbation
        fd = (losses(mu + eps, y0) - losses(mu - eps, y0)) / (2 * eps)
        torch.testing.assert_close(gmu, fd, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(gradient=OptimizeDiscretize(params=(), seminorm=True), events=lambda t, y: y[:, 0]), "events"),
        (dict(method="gl4"), "not 'gl4'"),
        (dict(method="implicit_adams"), "Adams"),
    ],
)
def test_unsupported_implicit_combinations_raise(kwargs, match):
    args = dict(
        func=vdp(torch.ones(2, dtype=D)),
        y0=torch.ones(2, 2, dtype=D),
        t=torch.linspace(0, 1, 3, dtype=D),
        method="radauIIA5",
        per_sample=True,
    )
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        odeflow.solve(**args)


def test_float32_implicit_close_to_float64():
    g = torch.Generator().manual_seed(6)
    mu = 1 + 20 * torch.rand(3, generator=g, dtype=D)
    y0 = torch.stack([1.5 + torch.rand(3, generator=g, dtype=D), torch.zeros(3, dtype=D)], -1)
    t = torch.linspace(0, 0.5, 3, dtype=D)
    step = Adaptive(rtol=1e-4, atol=1e-5)
    ref = odeflow.solve(vdp(mu), y0, t, method="radauIIA5", step=step, per_sample=True)
    sol = odeflow.solve(vdp(mu.float()), y0.float(), t.float(), method="radauIIA5", step=step, per_sample=True)
    assert sol.ys.dtype == torch.float32
    torch.testing.assert_close(sol.ys.double(), ref.ys, rtol=1e-3, atol=1e-3)


def test_implicit_compaction_changes_no_row():
    """PerSample(compact=...) with an implicit method: f sees only the running rows once few are
    left, and every row takes the steps and reaches the values it does without compaction."""
    g = torch.Generator().manual_seed(8)
    batch = 5
    mu = 1 + 30 * torch.rand(batch, generator=g, dtype=D)
    y0 = torch.stack([1.5 + torch.rand(batch, generator=g, dtype=D), torch.zeros(batch, dtype=D)], -1)
    ends = 0.2 + 0.6 * torch.rand(batch, generator=g, dtype=D)  # rows finish at different times
    t = torch.stack([torch.linspace(0, 1, 4, dtype=D) * e for e in ends])
    seen = []

    def f_rows(tt, y, rows):
        seen.append(rows.shape[0])
        return vdp(mu[rows])(tt, y)

    full = odeflow.solve(vdp(mu), y0, t, method="radauIIA5", step=STEP, per_sample=True)
    packed = odeflow.solve(f_rows, y0, t, method="radauIIA5", step=STEP, per_sample=PerSample(compact=0.8))
    assert min(seen) < batch  # some evaluations covered the running rows only
    for name in ("accepted", "rejected"):
        assert torch.equal(getattr(full.stats.per_sample, name), getattr(packed.stats.per_sample, name))
    torch.testing.assert_close(packed.ys, full.ys, rtol=1e-12, atol=1e-12)
    assert bool((packed.stats.per_sample.nfe < full.stats.per_sample.nfe).any())


def test_implicit_events_with_compaction_equal_without():
    g = torch.Generator().manual_seed(10)
    batch = 4
    mu = 0.3 + 4 * torch.rand(batch, generator=g, dtype=D)
    y0 = torch.stack([1.5 + torch.rand(batch, generator=g, dtype=D), torch.zeros(batch, dtype=D)], -1)
    level = 0.5 * torch.rand(batch, generator=g, dtype=D)  # x falls through its own level
    t = torch.linspace(0, 3, 4, dtype=D)
    ev_full = odeflow.Event(lambda tt, y: y[:, 0] - level, direction=-1)
    ev_rows = odeflow.Event(lambda tt, y, rows: y[:, 0] - level[rows], direction=-1)
    full = odeflow.solve(vdp(mu), y0, t, method="radauIIA5", step=STEP, per_sample=True, events=ev_full)
    packed = odeflow.solve(
        lambda tt, y, rows: vdp(mu[rows])(tt, y), y0, t, method="radauIIA5", step=STEP,
        per_sample=PerSample(compact=0.9), events=ev_rows,
    )  # fmt: skip
    assert 0 < int(full.stats.event_hit.sum()) < batch  # rows stop at different times, or not at all
    assert torch.equal(full.stats.event_hit, packed.stats.event_hit)
    torch.testing.assert_close(packed.event_t, full.event_t, rtol=1e-12, atol=1e-12, equal_nan=True)
    torch.testing.assert_close(packed.ys, full.ys, rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(
    __import__("shutil").which("g++") is None and __import__("shutil").which("c++") is None,
    reason="compile=True needs a C++ compiler",
)
def test_compiled_row_newton_equals_the_eager_per_sample_solve(monkeypatch):
    """compile=True: each step's Newton iterations on all rows one compiled call; the same steps,
    evaluations, values and gradients as the eager per-sample loop."""
    from odeflow.solvers import compiled_row_newton

    g = torch.Generator().manual_seed(7)
    batch = 5
    mu = (1 + 60 * torch.rand(batch, generator=g, dtype=D)).requires_grad_(True)
    y0 = torch.stack([1.5 + torch.rand(batch, generator=g, dtype=D), torch.zeros(batch, dtype=D)], -1)
    t = torch.linspace(0, 1, 5, dtype=D)

    def run(compile):
        sol = odeflow.solve(vdp(mu), y0, t, method="radauIIA5", step=STEP, per_sample=True, compile=compile)
        (gmu,) = torch.autograd.grad(
            (sol.ys * torch.linspace(-1, 1, sol.ys.numel(), dtype=D).reshape(sol.ys.shape)).sum(), mu
        )
        return sol, gmu

    calls = []
    original = compiled_row_newton.CompiledRowNewton.__call__
    monkeypatch.setattr(
        compiled_row_newton.CompiledRowNewton, "__call__", lambda self, *a: calls.append(1) or original(self, *a)
    )
    eager, g_eager = run(False)
    assert not calls
    compiled, g_compiled = run(True)
    assert calls
    for name in ("accepted", "rejected", "nfe"):
        assert torch.equal(getattr(compiled.stats.per_sample, name), getattr(eager.stats.per_sample, name)), name
    torch.testing.assert_close(compiled.ys, eager.ys, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g_compiled, g_eager, rtol=1e-10, atol=1e-12)
    # terminal events per row stay eager around the compiled Newton: the same event times
    event = lambda tt, y: y[:, 0] - (y0[:, 0] - 0.02)  # noqa: E731  (x falls faster for small mu)
    with torch.no_grad():
        on = [
            odeflow.solve(vdp(mu), y0, t, method="radauIIA5", step=STEP, per_sample=True, events=event, compile=c)
            for c in (False, True)
        ]
    assert bool(torch.isfinite(on[0].event_t).any())  # some rows stop at their event
    torch.testing.assert_close(on[1].event_t, on[0].event_t, rtol=0, atol=1e-12, equal_nan=True)
    torch.testing.assert_close(on[1].ys, on[0].ys, rtol=1e-12, atol=1e-12, equal_nan=True)
