"""Per-sample solves with Adaptive(weights, norm, step_t, jump_t) and PerSample(step_t, jump_t): on random
Van der Pol batches (spread mu; stiff for the implicit methods) every row takes the accepted and
rejected steps it takes alone with the shared-step solver given the same options (its own weights,
norm and stop times), values within 1e-10 in float64; the adjoint's gradients and backward steps
equal each sample alone; compaction changes nothing; what stays unsupported raises."""

import math

import pytest
import torch

import odeflow
from odeflow.gradients import OptimizeDiscretize
from odeflow.solvers.per_sample import PerSample
from odeflow.solvers.stepping import Adaptive

D = torch.float64


def forced_vdp(mu, jumps, amp):
    """Van der Pol whose forcing steps up by amp at each of the row's jump times (NaN: none)."""

    def f(t, y):
        x, v = y[..., 0], y[..., 1]
        n_past = (t.unsqueeze(-1) >= jumps.nan_to_num(math.inf)).sum(-1)
        return torch.stack([v, mu * (1 - x * x) * v - x + amp * n_past.to(y.dtype)], -1)

    return f


def batch_of(g, batch, stiff, span):
    mu = (
        (1 + 30 * torch.rand(batch, generator=g, dtype=D))
        if stiff
        else (0.5 + 4 * torch.rand(batch, generator=g, dtype=D))
    )
    y0 = torch.stack([1.5 + torch.rand(batch, generator=g, dtype=D), torch.zeros(batch, dtype=D)], -1)
    jumps = torch.sort(span * (0.1 + 0.8 * torch.rand(batch, 2, generator=g, dtype=D)), dim=1).values
    jumps[0, 1] = float("nan")  # a row with one jump only
    amp = 0.2 + torch.rand(batch, generator=g, dtype=D)
    return mu, y0, jumps, amp


def assert_rows_as_alone(sol, solve_alone, batch):
    for b in range(batch):
        ref = solve_alone(b)
        assert int(sol.stats.per_sample.accepted[b]) == ref.stats.accepted
        assert int(sol.stats.per_sample.rejected[b]) == ref.stats.rejected
        torch.testing.assert_close(sol.ys[:, b], ref.ys[:, 0], rtol=1e-10, atol=1e-10)


NORMS = ["shared_weights", "row_weights", "norm", "host_norm"]
SLOW = pytest.mark.slow
NORM_CASES = [(m, k) for m in ("dopri5",) for k in NORMS] + [("radauIIA5", "row_weights")]
NORM_CASES += [
    pytest.param(m, k, marks=SLOW) for m in ("bosh3", "radauIIA5") for k in NORMS if (m, k) not in NORM_CASES
]


@pytest.mark.parametrize("method, kind", NORM_CASES)
def test_weights_and_norm_per_row_as_alone(method, kind):
    g = torch.Generator().manual_seed(20 + NORMS.index(kind) + len(method))
    batch, stiff = 3, method == "radauIIA5"
    mu, y0, _, _ = batch_of(g, batch, stiff, 1.0)
    t = torch.linspace(0, 0.5 if stiff else 2.0, 4, dtype=D)
    row_w = 0.1 + torch.rand(batch, 2, generator=g, dtype=D)
    per_row = {
        "shared_weights": lambda b: dict(weights=torch.tensor([1.0, 0.0], dtype=D)),
        "row_weights": lambda b: dict(weights=row_w[b]),
        "norm": lambda b: dict(norm=lambda r: r.abs().amax()),
        "host_norm": lambda b: dict(norm=lambda r: float(r.abs().max())),  # not vmappable: row by row
    }[kind]
    batch_kw = dict(weights=row_w) if kind == "row_weights" else per_row(0)
    tol = dict(rtol=1e-6, atol=1e-8)
    sol = odeflow.solve(
        forced_vdp(mu, torch.empty(batch, 0, dtype=D), 0.0), y0, t, method=method,
        step=Adaptive(**tol, **batch_kw), per_sample=True,
    )  # fmt: skip
    plain = odeflow.solve(
        forced_vdp(mu, torch.empty(batch, 0, dtype=D), 0.0), y0, t, method=method, step=Adaptive(**tol), per_sample=True
    )
    assert not torch.equal(sol.stats.per_sample.steps, plain.stats.per_sample.steps)  # the norm mattered
    assert_rows_as_alone(
        sol,
        lambda b: odeflow.solve(
            forced_vdp(mu[b : b + 1], torch.empty(1, 0, dtype=D), 0.0),
            y0[b : b + 1],
            t,
            method=method,
            step=Adaptive(**tol, **per_row(b)),
        ),  # fmt: skip
        batch,
    )


@pytest.mark.parametrize(
    "method", ["dopri5", "radauIIA5"] + [pytest.param(m, marks=SLOW) for m in ("tsit5", "bosh3", "dopri8", "sdirk2")]
)
def test_step_and_jump_times_per_row_as_alone(method):
    g = torch.Generator().manual_seed(30 + len(method))
    stiff = method in ("radauIIA5", "sdirk2")
    batch = 3 if stiff else 4  # row 2 runs backwards
    span = 0.4 if stiff else 2.5
    mu, y0, jumps, amp = batch_of(g, batch, stiff, span)
    # row 2 runs backwards (over a shorter span: Van der Pol backwards in time blows up)
    rows = [torch.linspace(0, span, 4, dtype=D) * (-0.3 if b == 2 else 1) for b in range(batch)]
    t = torch.stack(rows)
    jumps[2] = -0.3 * jumps[2]
    step_t = (0.37 * span,)  # shared by every row (behind row 2's start: never reached there)
    low_order = method in ("bosh3", "sdirk2")
    tol = dict(rtol=1e-4, atol=1e-6) if low_order else dict(rtol=1e-6, atol=1e-8)
    f = forced_vdp(mu, torch.where(torch.arange(batch)[:, None] == 2, -jumps, jumps), amp)

    def field(tt, y):  # row 2 runs backwards in time: its forcing follows -t
        sign = torch.where(torch.arange(batch) == 2, -1.0, 1.0).to(D)
        return f(tt * sign, y)

    sol = odeflow.solve(
        field, y0, t, method=method, step=Adaptive(**tol, step_t=step_t), per_sample=PerSample(jump_t=jumps)
    )
    # the same stops without the jump side rule: f is taken at the jump itself, a different solve
    at_jump = odeflow.solve(
        field, y0, t, method=method, step=Adaptive(**tol, step_t=step_t), per_sample=PerSample(step_t=jumps)
    )
    assert not (
        torch.equal(sol.stats.per_sample.steps, at_jump.stats.per_sample.steps)
        and torch.allclose(sol.ys, at_jump.ys, rtol=1e-13, atol=1e-13)
    )

    def alone(b):
        sign = -1.0 if b == 2 else 1.0
        fb = forced_vdp(mu[b : b + 1], sign * jumps[b : b + 1], amp[b : b + 1])
        own = tuple(float(v) for v in jumps[b] if not torch.isnan(v))
        return odeflow.solve(
            lambda tt, y: fb(tt * sign, y), y0[b : b + 1], t[b], method=method,
            step=Adaptive(**tol, step_t=step_t, jump_t=own),
        )  # fmt: skip

    assert_rows_as_alone(sol, alone, batch)


@pytest.mark.parametrize("method", ["dopri5", pytest.param("radauIIA5", marks=SLOW)])
def test_stops_with_compaction_change_no_row(method):
    g = torch.Generator().manual_seed(41)
    batch, stiff = 4, method == "radauIIA5"
    span = 0.6 if stiff else 2.5
    mu, y0, jumps, amp = batch_of(g, batch, stiff, span)
    ends = span * (0.3 + 0.7 * torch.rand(batch, generator=g, dtype=D))
    t = torch.stack([torch.linspace(0, 1, 4, dtype=D) * e for e in ends])
    opts = dict(jump_t=jumps, step_t=jumps[:, :1] * 0.5)
    full = odeflow.solve(forced_vdp(mu, jumps, amp), y0, t, method=method, per_sample=PerSample(**opts))
    packed = odeflow.solve(
        lambda tt, y, r: forced_vdp(mu[r], jumps[r], amp[r])(tt, y), y0, t, method=method,
        per_sample=PerSample(compact=0.9, **opts),
    )  # fmt: skip
    assert torch.equal(full.stats.per_sample.accepted, packed.stats.per_sample.accepted)
    torch.testing.assert_close(packed.ys, full.ys, rtol=1e-12, atol=1e-12)


def test_adjoint_with_weights_and_jumps_as_alone():
    g = torch.Generator().manual_seed(50)
    batch = 3
    mu, y0, jumps, amp = batch_of(g, batch, False, 2.5)
    mu, y0 = mu.requires_grad_(), y0.requires_grad_()
    t = torch.linspace(0, 2.5, 4, dtype=D)
    w = torch.randn(4, batch, 2, generator=g, dtype=D)
    row_w = 0.1 + torch.rand(batch, 2, generator=g, dtype=D)
    tol = dict(rtol=1e-7, atol=1e-9)
    sol = odeflow.solve(
        forced_vdp(mu, jumps, amp), y0, t, step=Adaptive(**tol, weights=row_w), per_sample=PerSample(jump_t=jumps),
        gradient=OptimizeDiscretize(params=(mu,), seminorm=True),
    )  # fmt: skip
    gmu, gy0 = torch.autograd.grad((sol.ys * w).sum(), (mu, y0))
    steps_back = 0
    for b in range(batch):
        m, y = mu[b : b + 1].detach().clone().requires_grad_(), y0[b : b + 1].detach().clone().requires_grad_()
        own = tuple(float(v) for v in jumps[b] if not torch.isnan(v))
        ref = odeflow.solve(
            forced_vdp(m, jumps[b : b + 1], amp[b : b + 1]), y, t, step=Adaptive(**tol, weights=row_w[b], jump_t=own),
            gradient=OptimizeDiscretize(params=(m,), seminorm=True),
        )  # fmt: skip
        rm, ry = torch.autograd.grad((ref.ys * w[:, b : b + 1]).sum(), (m, y))
        torch.testing.assert_close(gmu[b], rm[0], rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(gy0[b], ry[0], rtol=1e-9, atol=1e-9)
        steps_back += ref.stats.steps_backward
    assert sol.stats.steps_backward == steps_back


def _args(**kw):
    args = dict(
        func=forced_vdp(torch.ones(2, dtype=D), torch.empty(2, 0, dtype=D), 0.0),
        y0=torch.ones(2, 2, dtype=D),
        t=torch.linspace(0, 1, 3, dtype=D),
        per_sample=True,
    )
    args.update(kw)
    return args


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(step=Adaptive(weights=torch.ones(2, dtype=D)), compile=True), "compile=True per sample does not support"),
        (dict(per_sample=PerSample(jump_t=torch.ones(2, dtype=D))), r"shape \[batch, K\]"),
        (dict(step=Adaptive(weights=[1.0, 1.0])), "as a tensor"),
        (dict(step=Adaptive(weights=torch.ones(3, dtype=D))), "has shape"),
        (dict(step=Adaptive(weights=torch.tensor([0.0, 0.0], dtype=D))), "at least one positive"),
        (
            dict(step=Adaptive(norm=lambda r: r.abs().max()), gradient=OptimizeDiscretize(params=(), seminorm=True)),
            "norm=",
        ),
        (
            dict(
                method="radauIIA5", step=Adaptive(jump_t=(0.5,)), gradient=OptimizeDiscretize(params=(), seminorm=True)
            ),
            "jump_t is not supported",
        ),
    ],
)
def test_refused_combinations_name_the_problem(kw, match):
    with pytest.raises(ValueError, match=match):
        odeflow.solve(**_args(**kw))


@pytest.mark.parametrize("method", ["dopri5", "radauIIA5"])
def test_backprop_with_weights_and_jumps_as_alone_and_finite_differences(method):
    g = torch.Generator().manual_seed(60 + len(method))
    stiff = method == "radauIIA5"
    batch, span = (2, 0.3) if stiff else (3, 2.5)
    mu, y0, jumps, amp = batch_of(g, batch, stiff, span)
    t = torch.linspace(0, span, 4, dtype=D)
    w = torch.randn(4, batch, 2, generator=g, dtype=D)
    row_w = 0.1 + torch.rand(batch, 2, generator=g, dtype=D)
    tol = dict(rtol=1e-6, atol=1e-8) if stiff else dict(rtol=1e-7, atol=1e-9)

    def losses(m):
        sol = odeflow.solve(
            forced_vdp(m, jumps, amp), y0, t, method=method, step=Adaptive(**tol, weights=row_w),
            per_sample=PerSample(jump_t=jumps),
        )  # fmt: skip
        return (sol.ys * w).sum(dim=(0, 2))

    m = mu.clone().requires_grad_()
    grad = torch.autograd.grad(losses(m).sum(), m)[0]
    for b in range(batch):
        mb = mu[b : b + 1].clone().requires_grad_()
        own = tuple(float(v) for v in jumps[b] if not torch.isnan(v))
        ref = odeflow.solve(
            forced_vdp(mb, jumps[b : b + 1], amp[b : b + 1]), y0[b : b + 1], t, method=method,
            step=Adaptive(**tol, weights=row_w[b], jump_t=own),
        )  # fmt: skip
        rb = torch.autograd.grad((ref.ys * w[:, b : b + 1]).sum(), mb)[0]
        torch.testing.assert_close(grad[b], rb[0], rtol=1e-10, atol=1e-10)
    eps = 1e-6
    with torch.no_grad():  # each row's loss sees only its own mu
        fd = (losses(mu + eps) - losses(mu - eps)) / (2 * eps)
    torch.testing.assert_close(grad, fd, rtol=1e-5, atol=1e-6)
