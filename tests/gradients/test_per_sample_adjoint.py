"""The continuous adjoint with per-sample steps (solve(..., per_sample=True,
gradient=OptimizeDiscretize(seminorm=True))): gradients equal those of the shared-step adjoint on
each sample alone (1e-8 in float64; the same backward steps), approach backpropagation through the
steps as the tolerances shrink, and agree with and without compaction; per-sample time rows (some
backwards), an nn.Module field, and clear errors for what is not supported."""

import pytest
import torch
from torch import nn

import odeflow
from odeflow.gradients import DiscretizeOptimize, OptimizeDiscretize
from odeflow.solvers.per_sample import PerSample
from odeflow.solvers.stepping import Adaptive, FixedStep

D = torch.float64


def vdp(mu, th):
    """Van der Pol with a per-row mu and a shared parameter th: x' = th v, v' = mu (1 - x^2) v - x."""

    def f(t, y):
        x, v = y[..., 0], y[..., 1]
        return torch.stack([th * v, mu * (1 - x * x) * v - x], -1)

    return f


def forced_linear(a, th):
    """y' = A y + th sin(t) (1, .., 1), a random stable A per row and a shared th."""

    def f(t, y):
        return (a @ y.unsqueeze(-1)).squeeze(-1) + th * torch.sin(t)[..., None]

    return f


def family(kind, batch, g):
    """(field(per-row params, th), per-row params, y0, th)."""
    th = (0.5 + torch.rand((), generator=g, dtype=D)).requires_grad_()
    if kind == "vdp":
        mu = (0.5 + 4 * torch.rand(batch, generator=g, dtype=D)).requires_grad_()
        y0 = torch.stack([1 + torch.rand(batch, generator=g, dtype=D), torch.zeros(batch, dtype=D)], -1)
        return vdp, mu, y0.requires_grad_(), th
    a = torch.randn(batch, 3, 3, generator=g, dtype=D) - 1.5 * torch.eye(3, dtype=D)
    return forced_linear, a.requires_grad_(), torch.randn(batch, 3, generator=g, dtype=D).requires_grad_(), th


def adjoint_grads(field, p, y0, th, t, w, method, step, per_sample=True):
    sol = odeflow.solve(
        field(p, th),
        y0,
        t,
        method=method,
        step=step,
        per_sample=per_sample,
        gradient=OptimizeDiscretize(params=(p, th), seminorm=True),
    )
    return torch.autograd.grad((sol.ys * w).sum(), (p, th, y0)), sol


@pytest.mark.parametrize("method", ["dopri5", "tsit5", "dopri8", "bosh3"])
@pytest.mark.parametrize("kind", ["vdp", "linear"])
def test_adjoint_equals_each_sample_alone(kind, method):
    g = torch.Generator().manual_seed(40 + 3 * len(method) + len(kind))
    batch = 5
    field, p, y0, th = family(kind, batch, g)
    t = torch.linspace(0, 4, 9, dtype=D)
    step = Adaptive(rtol=1e-7, atol=1e-9) if method != "bosh3" else Adaptive(rtol=1e-5, atol=1e-7)
    w = torch.randn(9, batch, y0.shape[1], generator=g, dtype=D)
    (gp, gth, gy0), sol = adjoint_grads(field, p, y0, th, t, w, method, step)
    th_total, steps_back = torch.zeros((), dtype=D), 0
    for b in range(batch):
        pb, yb = p[b].detach().clone().requires_grad_(), y0[b : b + 1].detach().clone().requires_grad_()
        thb = th.detach().clone().requires_grad_()
        (rp, rth, ry), one = adjoint_grads(field, pb, yb, thb, t, w[:, b : b + 1], method, step, per_sample=False)
        torch.testing.assert_close(gp[b], rp, rtol=1e-8, atol=1e-8)
        torch.testing.assert_close(gy0[b], ry[0], rtol=1e-8, atol=1e-8)
        th_total, steps_back = th_total + rth, steps_back + one.stats.steps_backward
    torch.testing.assert_close(gth, th_total, rtol=1e-8, atol=1e-8)  # a shared parameter: the sum
    assert sol.stats.steps_backward == steps_back  # each row took the backward steps it takes alone


def test_per_sample_time_rows_some_backwards():
    g = torch.Generator().manual_seed(3)
    batch = 4
    field, p, y0, th = family("linear", batch, g)
    rows = []
    for b in range(batch):
        row = torch.cat([torch.zeros(1, dtype=D), torch.sort(0.2 + 3 * torch.rand(5, generator=g, dtype=D)).values])
        rows.append(-row if b % 2 else row)
    t = torch.stack(rows)
    step = Adaptive(rtol=1e-7, atol=1e-9)
    w = torch.randn(6, batch, 3, generator=g, dtype=D)
    (gp, gth, gy0), _ = adjoint_grads(field, p, y0, th, t, w, "dopri5", step)
    for b in range(batch):
        pb, yb = p[b].detach().clone().requires_grad_(), y0[b : b + 1].detach().clone().requires_grad_()
        thb = th.detach().clone().requires_grad_()
        (rp, _, ry), _ = adjoint_grads(field, pb, yb, thb, t[b], w[:, b : b + 1], "dopri5", step, per_sample=False)
        torch.testing.assert_close(gp[b], rp, rtol=1e-8, atol=1e-8)
        torch.testing.assert_close(gy0[b], ry[0], rtol=1e-8, atol=1e-8)


def test_adjoint_approaches_backpropagation():
    g = torch.Generator().manual_seed(8)
    field, p, y0, th = family("vdp", 4, g)
    t = torch.linspace(0, 3, 7, dtype=D)
    w = torch.randn(7, 4, 2, generator=g, dtype=D)
    errors = []
    for tol in (1e-6, 1e-10):
        step = Adaptive(rtol=tol, atol=tol * 1e-2)
        adj, _ = adjoint_grads(field, p, y0, th, t, w, "dopri5", step)
        sol = odeflow.solve(field(p, th), y0, t, step=step, per_sample=True, gradient=DiscretizeOptimize())
        bp = torch.autograd.grad((sol.ys * w).sum(), (p, th, y0))
        errors.append(max(float(((a - b).abs() / (1 + b.abs())).max()) for a, b in zip(adj, bp)))
    assert errors[1] < 1e-7
    assert errors[1] < 1e-2 * errors[0]  # the two gradients converge to each other


def test_module_field_and_compaction():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 2)).double()
    scale = torch.linspace(0.5, 3.0, 6, dtype=D)  # per-row stiffness

    class Field(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, t, y, rows=None):
            s = scale if rows is None else scale[rows]
            return s[:, None] * self.net(torch.cat([y, t[:, None].expand(-1, 1)], -1))

    f = Field()
    y0 = torch.randn(6, 2, dtype=D).requires_grad_()
    t = torch.stack([torch.linspace(0, 0.5 + 0.3 * b, 5, dtype=D) for b in range(6)])  # rows end one by one
    step = Adaptive(rtol=1e-7, atol=1e-9)
    w = torch.randn(5, 6, 2, dtype=D)
    grads = []
    for ps in (True, PerSample(compact=0.9)):
        sol = odeflow.solve(f, y0, t, step=step, per_sample=ps, gradient=OptimizeDiscretize(seminorm=True))
        grads.append(torch.autograd.grad((sol.ys * w).sum(), (y0, *net.parameters())))
        if ps is not True:
            assert int(sol.stats.per_sample.nfe.min()) < sol.stats.nfe  # finished rows left out
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # Each row alone through the shared-step adjoint: the parameter gradient is the sum.
    total = [torch.zeros_like(q) for q in net.parameters()]
    for b in range(6):
        yb = y0[b : b + 1].detach().clone().requires_grad_()

        def f_b(tt, y, b=b):
            return scale[b] * net(torch.cat([y, tt.reshape(1, 1).expand(y.shape[0], 1)], -1))

        sol = odeflow.solve(
            f_b, yb, t[b], step=step, gradient=OptimizeDiscretize(params=tuple(net.parameters()), seminorm=True)
        )
        got = torch.autograd.grad((sol.ys[:, 0] * w[:, b]).sum(), (yb, *net.parameters()))
        torch.testing.assert_close(grads[0][0][b], got[0][0], rtol=1e-8, atol=1e-8)
        total = [x + y for x, y in zip(total, got[1:])]
    for a, b in zip(grads[0][1:], total):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-8)


def test_single_output_time_passes_the_gradient_through():
    y0 = torch.randn(3, 2, dtype=D).requires_grad_()
    mu = torch.ones(3, dtype=D, requires_grad=True)
    sol = odeflow.solve(
        vdp(mu, 1.0),
        y0,
        torch.zeros(1, dtype=D),
        per_sample=True,
        gradient=OptimizeDiscretize(params=(mu,), seminorm=True),
    )
    w = torch.randn(1, 3, 2, dtype=D)
    (gy,) = torch.autograd.grad((sol.ys * w).sum(), y0)
    torch.testing.assert_close(gy, w[0])


@pytest.mark.parametrize(
    "gradient, match",
    [
        (OptimizeDiscretize(params=()), "seminorm=True"),
        (OptimizeDiscretize(params=(), seminorm=True, method="radauIIA5"), "needs an explicit method"),
        (OptimizeDiscretize(params=(), seminorm=True, step=FixedStep(0.1)), "Adaptive"),
        (OptimizeDiscretize(seminorm=True), "params"),
    ],
)
def test_unsupported_adjoint_options_raise_a_clear_error(gradient, match):
    with pytest.raises((ValueError, TypeError), match=match):
        odeflow.solve(
            vdp(torch.ones(2, dtype=D), 1.0),
            torch.ones(2, 2, dtype=D),
            torch.linspace(0, 1, 3, dtype=D),
            per_sample=True,
            gradient=gradient,
        )


def test_float32_adjoint_close_to_float64():
    g = torch.Generator().manual_seed(12)
    field, p, y0, th = family("vdp", 4, g)
    t = torch.linspace(0, 2, 5, dtype=D)
    w = torch.randn(5, 4, 2, generator=g, dtype=D)
    step = Adaptive(rtol=1e-5, atol=1e-6)
    ref, _ = adjoint_grads(field, p, y0, th, t, w, "dopri5", step)
    p32, y32, th32 = (x.detach().float().requires_grad_() for x in (p, y0, th))
    got, sol = adjoint_grads(field, p32, y32, th32, t.float(), w.float(), "dopri5", step)
    assert sol.ys.dtype == torch.float32
    for a, b in zip(got, ref):
        assert a.dtype == torch.float32
        torch.testing.assert_close(a.double(), b, rtol=2e-3, atol=2e-3)
