"""The per-sample continuous adjoint of implicit solves (solve(..., method=<implicit>, per_sample=True,
gradient=OptimizeDiscretize(seminorm=True))): on random stiff Van der Pol batches (spread mu) and
random linear systems with spread eigenvalues, gradients agree with the shared-step (interpolated)
adjoint on each sample alone and with finite differences, converge to backpropagation as the
tolerances shrink, do not depend on the batch's composition (1e-10), and agree with compaction."""

import pytest
import torch

import odeflow
from odeflow.gradients import OptimizeDiscretize
from odeflow.solvers.per_sample import PerSample
from odeflow.solvers.stepping import Adaptive

D = torch.float64


def vdp(mu, th):
    def f(t, y):
        x, v = y[..., 0], y[..., 1]
        return torch.stack([th * v, mu * (1 - x * x) * v - x], -1)

    return f


def linear(a, th):
    def f(t, y):
        return (a @ y.unsqueeze(-1)).squeeze(-1) + th * torch.cos(t)[..., None]

    return f


def family(kind, batch, g):
    """(field(per-row params, th), per-row params, y0, th): stiffness spread over the rows."""
    th = (0.5 + torch.rand((), generator=g, dtype=D)).requires_grad_()
    if kind == "vdp":
        mu = (1 + 40 * torch.rand(batch, generator=g, dtype=D)).requires_grad_()
        y0 = torch.stack([1.5 + torch.rand(batch, generator=g, dtype=D), torch.zeros(batch, dtype=D)], -1)
        return vdp, mu, y0.requires_grad_(), th
    q = torch.linalg.qr(torch.randn(batch, 3, 3, generator=g, dtype=D)).Q
    lam = -(10 ** (2.5 * torch.rand(batch, 3, generator=g, dtype=D)))
    a = (q @ torch.diag_embed(lam) @ q.transpose(1, 2)).requires_grad_()
    return linear, a, torch.randn(batch, 3, generator=g, dtype=D).requires_grad_(), th


def grads(field, p, y0, th, t, w, step, method="radauIIA5", per_sample=True, gradient=None):
    gradient = gradient or OptimizeDiscretize(params=(p, th), seminorm=True)
    sol = odeflow.solve(field(p, th), y0, t, method=method, step=step, per_sample=per_sample, gradient=gradient)
    return torch.autograd.grad((sol.ys * w).sum(), (p, th, y0)), sol


def alone(b, p, y0, th):
    return (x.detach().clone().requires_grad_() for x in (p[b], y0[b : b + 1], th))


SLOW = pytest.mark.slow


@pytest.mark.parametrize(
    "kind, method, tol",
    [
        ("vdp", "radauIIA5", 1e-6),
        pytest.param("linear", "radauIIA5", 1e-8, marks=SLOW),
        pytest.param("vdp", "sdirk2", 1e-8, marks=SLOW),
        pytest.param("linear", "trbdf2", 1e-8, marks=SLOW),
    ],
)
def test_implicit_adjoint_agrees_with_each_sample_alone(kind, method, tol):
    g = torch.Generator().manual_seed(11 + len(kind) + len(method))
    batch = 2 if tol > 1e-8 else 3
    field, p, y0, th = family(kind, batch, g)
    n_t = 3 if tol > 1e-8 else 4
    t = torch.linspace(0, 0.3 if tol > 1e-8 else 0.6, n_t, dtype=D)
    step = Adaptive(rtol=tol, atol=tol * 1e-2)
    w = torch.randn(n_t, batch, y0.shape[1], generator=g, dtype=D)
    # the same adjoint, each with its own steps: the shared one solves each interval again and keeps
    # the parameter gradient in its error norm (the per-sample one cannot: the seminorm), so they
    # agree to the tolerance's effect on the gradient, not to rounding (stiff linear rows and the
    # order 2 methods: less closely)
    if method != "radauIIA5":
        close = dict(rtol=1e-4, atol=1e-5)
    else:
        close = dict(rtol=1e-7, atol=1e-7) if kind == "vdp" else dict(rtol=1e-5, atol=1e-6)
    (gp, gth, gy0), sol = grads(field, p, y0, th, t, w, step, method)
    assert sol.stats.steps_backward > 0 and sol.stats.nfe_backward > 0
    th_total = torch.zeros((), dtype=D)
    for b in range(batch):
        pb, yb, thb = alone(b, p, y0, th)
        (rp, rth, ry), _ = grads(field, pb, yb, thb, t, w[:, b : b + 1], step, method, per_sample=False)
        torch.testing.assert_close(gp[b], rp, **close)
        torch.testing.assert_close(gy0[b], ry[0], **close)
        th_total = th_total + rth
    torch.testing.assert_close(gth, th_total, **close)


@SLOW
def test_implicit_adjoint_approaches_backpropagation():
    g = torch.Generator().manual_seed(5)
    field, mu, y0, th = family("vdp", 3, g)
    t = torch.linspace(0, 0.5, 4, dtype=D)
    w = torch.randn(4, 3, 2, generator=g, dtype=D)
    errors = []
    for tol in (1e-5, 1e-9):
        step = Adaptive(rtol=tol, atol=tol * 1e-2)
        adj, _ = grads(field, mu, y0, th, t, w, step)
        sol = odeflow.solve(field(mu, th), y0, t, method="radauIIA5", step=step, per_sample=True)
        bp = torch.autograd.grad((sol.ys * w).sum(), (mu, th, y0))
        errors.append(max(float(((a - b).abs() / (1 + b.abs())).max()) for a, b in zip(adj, bp)))
    assert errors[1] < 1e-7
    assert errors[1] < 1e-2 * errors[0]


def test_implicit_adjoint_against_finite_differences():
    g = torch.Generator().manual_seed(6)
    field, mu, y0, th = family("vdp", 2, g)
    t = torch.linspace(0, 0.3, 3, dtype=D)
    w = torch.randn(3, 2, 2, generator=g, dtype=D)
    step = Adaptive(rtol=1e-7, atol=1e-9)
    adj, _ = grads(field, mu, y0, th, t, w, step)
    eps = 1e-6
    with torch.no_grad():  # each row's loss sees only its own mu

        def losses(m):
            return (odeflow.solve(field(m, th), y0, t, method="radauIIA5", step=step, per_sample=True).ys * w).sum(
                dim=(0, 2)
            )

        fd = (losses(mu + eps) - losses(mu - eps)) / (2 * eps)
    torch.testing.assert_close(adj[0], fd, rtol=1e-5, atol=1e-6)


def test_implicit_adjoint_row_does_not_depend_on_the_batch():
    g = torch.Generator().manual_seed(9)
    field, a, y0, th = family("linear", 4, g)
    t = torch.linspace(0, 0.2, 3, dtype=D)
    step = Adaptive(rtol=1e-5, atol=1e-7)
    w = torch.randn(3, 4, 3, generator=g, dtype=D)
    (ga, _, gy0), _ = grads(field, a, y0, th, t, w, step)
    perm = torch.tensor([2, 0, 3])  # another batch holding three of the rows, in another order
    ap, yp, thp = (x.detach().clone().requires_grad_() for x in (a[perm], y0[perm], th))
    (ga2, _, gy2), _ = grads(field, ap, yp, thp, t, w[:, perm], step)
    torch.testing.assert_close(ga2, ga[perm], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gy2, gy0[perm], rtol=1e-10, atol=1e-12)


def test_implicit_adjoint_with_compaction_and_time_rows():
    g = torch.Generator().manual_seed(12)
    batch = 3
    _, a, y0, th = family("linear", batch, g)
    rows = []
    for b in range(batch):
        row = torch.cat([torch.zeros(1, dtype=D), torch.sort(0.02 + 0.2 * torch.rand(2, generator=g, dtype=D)).values])
        rows.append(-row if b % 2 else row)
    t = torch.stack(rows)
    w = torch.randn(3, batch, 3, generator=g, dtype=D)
    step = Adaptive(rtol=1e-5, atol=1e-7)

    def f_rows(tt, y, r):
        return (a[r] @ y.unsqueeze(-1)).squeeze(-1) + th * torch.cos(tt)[..., None]

    results = []
    for opts in (True, PerSample(compact=0.7)):
        f = f_rows if isinstance(opts, PerSample) else (lambda tt, y: f_rows(tt, y, torch.arange(batch)))
        sol = odeflow.solve(
            f, y0, t, method="radauIIA5", step=step, per_sample=opts,
            gradient=OptimizeDiscretize(params=(a, th), seminorm=True),
        )  # fmt: skip
        results.append(torch.autograd.grad((sol.ys * w).sum(), (a, th, y0)))
    for x, y in zip(*results):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-12)
    # a forward and a backward row against backpropagation through a tighter solve
    a2, y2, th2 = (x.detach().clone().requires_grad_() for x in (a[:2], y0[:2], th))
    tight = odeflow.solve(
        linear(a2, th2), y2, t[:2], method="radauIIA5", step=Adaptive(rtol=1e-8, atol=1e-10), per_sample=True
    )
    ra, ry = torch.autograd.grad((tight.ys * w[:, :2]).sum(), (a2, y2))
    torch.testing.assert_close(results[0][0][:2], ra, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(results[0][2][:2], ry, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "gradient, match",
    [
        (OptimizeDiscretize(params=(), seminorm=True, method="dopri5"), "adaptive implicit method too"),
        (OptimizeDiscretize(params=()), "seminorm=True"),
    ],
)
def test_implicit_adjoint_refusals(gradient, match):
    with pytest.raises(ValueError, match=match):
        odeflow.solve(
            vdp(torch.ones(2, dtype=D), 1.0), torch.ones(2, 2, dtype=D), torch.linspace(0, 1, 3, dtype=D),
            method="radauIIA5", per_sample=True, gradient=gradient,
        )  # fmt: skip


def test_implicit_adjoint_float32_close_to_float64():
    g = torch.Generator().manual_seed(14)
    _, mu, y0, th = family("vdp", 3, g)
    t = torch.linspace(0, 0.3, 3, dtype=D)
    step = Adaptive(rtol=1e-4, atol=1e-6)
    out = []
    for dt in (D, torch.float32):
        m, y, h = (x.detach().to(dt).requires_grad_() for x in (mu, y0, th))
        sol = odeflow.solve(
            vdp(m, h), y, t.to(dt), method="radauIIA5", step=step, per_sample=True,
            gradient=OptimizeDiscretize(params=(m, h), seminorm=True),
        )  # fmt: skip
        assert sol.ys.dtype == dt
        out.append(torch.autograd.grad(sol.ys.sum(), (m, h, y)))
    for a, b in zip(*out):
        assert b.dtype == torch.float32
        torch.testing.assert_close(b.double(), a, rtol=1e-3, atol=1e-3)


def test_implicit_adjoint_with_another_backward_method():
    g = torch.Generator().manual_seed(15)
    field, mu, y0, th = family("vdp", 2, g)
    t = torch.linspace(0, 0.3, 3, dtype=D)
    w = torch.randn(3, 2, 2, generator=g, dtype=D)
    step = Adaptive(rtol=1e-5, atol=1e-7)
    same, _ = grads(field, mu, y0, th, t, w, step)
    other = OptimizeDiscretize(params=(mu, th), seminorm=True, method="sdirk2")
    (gm, gth, gy), sol = grads(field, mu, y0, th, t, w, step, gradient=other)
    assert sol.stats.steps_backward > 0
    assert not torch.equal(gm, same[0])  # another backward solve: other steps, close values
    for a, b in zip((gm, gth, gy), same):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)
