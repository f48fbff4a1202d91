"""Per-sample adaptive stepping (solve(..., per_sample=True)): every row of a random batch takes the
steps it takes alone (same accepted/rejected counts, values within 1e-10 in float64), a batch's
composition changes no row, per-sample and backward time rows, compaction to the running rows,
gradients through the steps against each sample alone and finite differences, and clear errors."""

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

import odeflow
from helpers.batched_fields import assert_row_gradients_match_differences, forced_linear, lotka, vdp
from helpers.every_method import ADAPTIVE, EXPLICIT
from odeflow.gradients import DiscretizeOptimize, OptimizeDiscretize
from odeflow.solvers.errors import SolverError
from odeflow.solvers.per_sample import PerSample
from odeflow.solvers.stepping import Adaptive, FixedStep

D = torch.float64
STEP = Adaptive(rtol=1e-6, atol=1e-8)


def family(kind: str, batch: int, g: torch.Generator):
    """(field of the batch, field of sample b alone, y0 [B, d]) of one random family."""
    if kind == "vdp":
        mu = 0.5 + 7.5 * torch.rand(batch, generator=g, dtype=D)
        y0 = torch.stack([2 + torch.rand(batch, generator=g, dtype=D), torch.zeros(batch, dtype=D)], -1)
        return vdp(mu), lambda b: vdp(mu[b]), y0
    if kind == "lotka":
        p = 0.5 + torch.rand(batch, 4, generator=g, dtype=D)
        y0 = 0.5 + torch.rand(batch, 2, generator=g, dtype=D)
        return lotka(p), lambda b: lotka(p[b]), y0
    d = 3
    a = torch.randn(batch, d, d, generator=g, dtype=D) - 1.5 * torch.eye(d, dtype=D)
    y0 = torch.randn(batch, d, generator=g, dtype=D)
    return forced_linear(a), lambda b: forced_linear(a[b]), y0


def alone(f_b, y0_b, t_b, method, step=STEP):
    return odeflow.solve(f_b, y0_b, t_b, method=method, step=step)


METHODS = [m for m in ADAPTIVE if m in EXPLICIT]  # every adaptive Runge-Kutta tableau
KINDS = ["vdp", "lotka", "linear"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", KINDS)
def test_each_row_takes_the_steps_it_takes_alone(kind, method):
    g = torch.Generator().manual_seed(10 * KINDS.index(kind) + METHODS.index(method))
    batch = 6
    f, f_alone, y0 = family(kind, batch, g)
    t = torch.linspace(0, 6, 13, dtype=D)
    step = STEP if method not in ("fehlberg2", "heun") else Adaptive(rtol=1e-4, atol=1e-6)
    sol = odeflow.solve(f, y0, t, method=method, step=step, per_sample=True)
    assert sol.ys.shape == (13, batch, y0.shape[1])
    counts = sol.stats.per_sample
    exact = 0  # rows whose steps and values equal the shared-step solver's
    for b in range(batch):
        # The same sample solved alone by the per-sample loop: the same steps, the same values.
        one = odeflow.solve(f_alone(b), y0[b : b + 1], t, method=method, step=step, per_sample=True)
        for name in ("steps", "accepted", "rejected"):
            assert int(getattr(counts, name)[b]) == int(getattr(one.stats.per_sample, name)[0])
        torch.testing.assert_close(sol.ys[:, b], one.ys[:, 0], rtol=1e-12, atol=1e-12)
        # ... and by the shared-step solver (an independent implementation).
        ref = alone(f_alone(b), y0[b], t, method, step)
        if method == "fehlberg2":
            # Its error estimate h (k3 - k1) / 512 cancels: last-bit differences in the arithmetic
            # move the step sizes apart over ~100 steps (same steps at first), so only the
            # accuracy is compared.
            assert abs(int(counts.accepted[b]) - ref.stats.accepted) <= 0.1 * ref.stats.accepted
            torch.testing.assert_close(sol.ys[:, b], ref.ys, rtol=2e-2, atol=1e-2)
            continue
        same_counts = (int(counts.accepted[b]), int(counts.rejected[b])) == (ref.stats.accepted, ref.stats.rejected)
        if same_counts and torch.allclose(sol.ys[:, b], ref.ys, rtol=1e-10, atol=1e-10):
            exact += 1
            continue
        # The two loops sum the error estimate in another order (sum_j (h c_j) k_j against
        # sum_j c_j (h k_j)). Where it is at the rounding level of y (a first step far below the
        # tolerance, err ~ 1e-14: seen for dopri8 on Van der Pol), one ulp moves the next step by
        # ~0.1 % and the step sequences part; both stay solutions within the tolerance. The
        # per-sample loop against itself (above) is exact in every case.
        assert abs(int(counts.accepted[b]) - ref.stats.accepted) <= 1
        assert abs(int(counts.rejected[b]) - ref.stats.rejected) <= 2
        torch.testing.assert_close(sol.ys[:, b], ref.ys, rtol=1e-7, atol=1e-8)
    assert exact >= batch // 2 or method == "fehlberg2"  # rounding ties are the exception, not the rule
    assert sol.stats.steps == int(counts.steps.sum())
    assert sol.stats.accepted == int(counts.accepted.sum())
    assert len(set(counts.accepted.tolist())) > 1  # the samples really take different numbers of steps


def test_matches_scipy_on_van_der_pol_with_random_mu():
    g = torch.Generator().manual_seed(7)
    f, _, y0 = family("vdp", 5, g)
    mu = 0.5 + 7.5 * torch.rand(5, generator=torch.Generator().manual_seed(7), dtype=D)
    t = torch.linspace(0, 5, 11, dtype=D)
    sol = odeflow.solve(f, y0, t, step=Adaptive(rtol=1e-10, atol=1e-12), per_sample=True)
    for b in range(5):
        m = float(mu[b])
        ref = solve_ivp(
            lambda _, y: [y[1], m * (1 - y[0] ** 2) * y[1] - y[0]],
            (0, 5),
            y0[b].numpy(),
            t_eval=t.numpy(),
            rtol=1e-12,
            atol=1e-13,
            method="DOP853",
        )
        np.testing.assert_allclose(sol.ys[:, b].numpy(), ref.y.T, rtol=1e-6, atol=1e-7)


def test_batch_composition_changes_no_sample():
    g = torch.Generator().manual_seed(3)
    p = 0.5 + torch.rand(12, 4, generator=g, dtype=D)
    y0 = 0.5 + torch.rand(12, 2, generator=g, dtype=D)
    t = torch.linspace(0, 8, 9, dtype=D)
    first = torch.arange(6)
    other = torch.tensor([9, 3, 11, 0, 5, 7, 1])  # some shared samples, others new, another order
    a = odeflow.solve(lotka(p[first]), y0[first], t, per_sample=True)
    b = odeflow.solve(lotka(p[other]), y0[other], t, per_sample=True)
    for i_b, sample in enumerate(other.tolist()):
        if sample in first.tolist():
            i_a = first.tolist().index(sample)
            torch.testing.assert_close(b.ys[:, i_b], a.ys[:, i_a], rtol=1e-12, atol=1e-12)
            for name in ("steps", "accepted", "rejected"):
                assert int(getattr(b.stats.per_sample, name)[i_b]) == int(getattr(a.stats.per_sample, name)[i_a])


@pytest.mark.parametrize("method", ["dopri5", "bosh3", "dopri8"])
def test_per_sample_time_rows_forward_and_backward(method):
    g = torch.Generator().manual_seed(11)
    batch = 5
    f, f_alone, y0 = family("linear", batch, g)
    rows = []
    for b in range(batch):
        pts = torch.sort(torch.rand(7, generator=g, dtype=D) * 4).values
        start = torch.rand((), generator=g, dtype=D)
        row = torch.cat([start.reshape(1), start + 0.1 + pts])
        rows.append(row.flip(0) if b % 2 else row)  # odd rows integrate backwards
    t = torch.stack(rows)
    sol = odeflow.solve(f, y0, t, method=method, per_sample=True)
    for b in range(batch):
        ref = alone(f_alone(b), y0[b], t[b], method, Adaptive())
        assert int(sol.stats.per_sample.accepted[b]) == ref.stats.accepted
        torch.testing.assert_close(sol.ys[:, b], ref.ys, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("method", ["dopri5", "heun"])
def test_compaction_keeps_every_result_and_skips_finished_rows(method):
    g = torch.Generator().manual_seed(5)
    f, _, y0 = family("vdp", 8, g)
    mu = 0.5 + 7.5 * torch.rand(8, generator=torch.Generator().manual_seed(5), dtype=D)
    t = torch.stack([torch.linspace(0, 1 + b, 6, dtype=D) for b in range(8)])  # rows end at different times
    step = Adaptive(rtol=1e-4, atol=1e-6)
    full = odeflow.solve(f, y0, t, method=method, step=step, per_sample=True)
    calls = []

    def f_rows(tt, y, rows):  # with compaction f learns which rows it sees
        calls.append(rows.shape[0])
        return vdp(mu[rows])(tt, y)

    comp = odeflow.solve(f_rows, y0, t, method=method, step=step, per_sample=PerSample(compact=0.75))
    torch.testing.assert_close(comp.ys, full.ys, rtol=1e-12, atol=1e-12)
    for name in ("steps", "accepted", "rejected"):
        assert torch.equal(getattr(comp.stats.per_sample, name), getattr(full.stats.per_sample, name))
    assert min(calls) < 8  # the field saw only the running rows at the end
    row_nfe = comp.stats.per_sample.nfe
    assert int(row_nfe[0]) < int(row_nfe[-1])  # the shortest row stopped costing work
    assert comp.stats.nfe == len(calls) == full.stats.nfe
    assert torch.all(full.stats.per_sample.nfe == full.stats.nfe)  # without compaction every call has every row


def test_float32_runs_close_to_float64():
    g = torch.Generator().manual_seed(2)
    f, _, y0 = family("lotka", 4, g)
    p = 0.5 + torch.rand(4, 4, generator=torch.Generator().manual_seed(2), dtype=D)
    t = torch.linspace(0, 4, 9)
    step = Adaptive(rtol=1e-5, atol=1e-6)
    ref = odeflow.solve(f, y0, t.double(), step=step, per_sample=True)
    sol = odeflow.solve(lotka(p.float()), y0.float(), t, step=step, per_sample=True)
    assert sol.ys.dtype == torch.float32
    torch.testing.assert_close(sol.ys.double(), ref.ys, rtol=1e-4, atol=1e-4)


def test_gradients_match_each_sample_alone_and_finite_differences():
    g = torch.Generator().manual_seed(4)
    batch = 3
    mu = (0.5 + 3 * torch.rand(batch, generator=g, dtype=D)).requires_grad_()
    y0 = (1 + torch.rand(batch, 2, generator=g, dtype=D)).requires_grad_()
    w = torch.randn(5, batch, 2, generator=g, dtype=D)
    t = torch.linspace(0, 2, 5, dtype=D)
    step = Adaptive(rtol=1e-9, atol=1e-11)

    def loss(mu_, y0_):
        return (odeflow.solve(vdp(mu_), y0_, t, step=step, per_sample=True).ys * w).sum()

    gmu, gy0 = torch.autograd.grad(loss(mu, y0), (mu, y0))
    for b in range(batch):
        m, y = mu[b].detach().clone().requires_grad_(), y0[b].detach().clone().requires_grad_()
        ref = (odeflow.solve(vdp(m), y, t, step=step).ys * w[:, b]).sum()
        rm, ry = torch.autograd.grad(ref, (m, y))
        torch.testing.assert_close(gmu[b], rm, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(gy0[b], ry, rtol=1e-9, atol=1e-9)
    assert_row_gradients_match_differences(loss, mu, y0, gmu, gy0, component=1, rtol=1e-5)


def test_max_steps_names_the_sample():
    mu = torch.tensor([0.5, 1000.0], dtype=D)
    y0 = torch.tensor([[2.0, 0.0], [2.0, 0.0]], dtype=D)
    with pytest.raises(SolverError, match="max_steps=2000 in sample 1"):
        odeflow.solve(vdp(mu), y0, [0.0, 50.0], step=Adaptive(max_steps=2000), per_sample=True)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(gradient=OptimizeDiscretize()), "OptimizeDiscretize"),
        (dict(compile="auto"), "compile='auto'"),
        (dict(compile=True, gradient=OptimizeDiscretize(seminorm=True)), "compile=True with OptimizeDiscretize"),
        (dict(method="implicit_adams"), "Adams methods are fixed-step only"),
        (dict(step=FixedStep(0.1), method="rk4"), "Adaptive"),
        (dict(step=Adaptive(jump_t=(0.5,)), compile=True), "compile=True per sample does not support"),
        (dict(gradient=DiscretizeOptimize(checkpoints=2)), "checkpointed"),
        (dict(t=torch.zeros(3, 4, dtype=D)), r"\[batch, T\]"),
        (dict(t=torch.tensor([[0.0, 1.0, 0.5], [0.0, 1.0, 2.0]], dtype=D)), "row 0 of t is not strictly monotone"),
        (dict(t=torch.linspace(0, 1, 3, dtype=D).requires_grad_()), "with respect to t"),
        (dict(y0=(torch.ones(2, 2, dtype=D),)), "tuple"),
        (dict(per_sample="yes"), "per_sample must be"),
    ],
)
def test_unsupported_input_raises_a_clear_error(kwargs, match):
    args = dict(func=vdp(torch.ones(2, dtype=D)), y0=torch.ones(2, 2, dtype=D), t=torch.linspace(0, 1, 3, dtype=D))
    args.update(per_sample=True)
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        odeflow.solve(**args)


def test_gradients_through_compaction_equal_those_without():
    g = torch.Generator().manual_seed(8)
    mu = (0.5 + 3 * torch.rand(6, generator=g, dtype=D)).requires_grad_()
    y0 = (1 + torch.rand(6, 2, generator=g, dtype=D)).requires_grad_()
    t = torch.stack([torch.linspace(0, 1 + b, 5, dtype=D) for b in range(6)])  # rows finish one by one
    w = torch.randn(5, 6, 2, generator=g, dtype=D)

    def f(tt, y, rows=None):
        return vdp(mu if rows is None else mu[rows])(tt, y)

    plain = torch.autograd.grad((odeflow.solve(f, y0, t, per_sample=True).ys * w).sum(), (mu, y0))
    sol = odeflow.solve(f, y0, t, per_sample=PerSample(compact=0.8))
    assert int(sol.stats.per_sample.nfe.min()) < sol.stats.nfe  # compaction did happen
    compact = torch.autograd.grad((sol.ys * w).sum(), (mu, y0))
    for a, b in zip(plain, compact):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
