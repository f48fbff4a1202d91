"""solve(..., per_sample=True, compile=True): every attempted step of all rows as one compiled
call takes the steps of the eager per-sample loop (the same accepted, rejected and evaluated
counts per sample, values within 1e-10 in float64, gradients by backpropagation within 1e-9),
with per-sample and backward time rows, compaction, every output rule (continuous extension,
Hermite, landing on the outputs) and the eager loop's errors. Each test compiles (tens of
seconds), so all are slow."""

import shutil

import pytest
import torch
from torch import nn

import odeflow
from helpers.batched_fields import forced_linear, lotka, vdp
from odeflow.solvers.errors import SolverError
from odeflow.solvers.per_sample import PerSample
from odeflow.solvers.stepping import Adaptive

D = torch.float64
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("g++") is None and shutil.which("c++") is None, reason="compile=True needs a C++ compiler"
    ),
]


def family(kind: str, batch: int, g: torch.Generator, dtype=D):
    """(field, y0 [B, d]) of a random family of problems, one parameter set per row."""
    if kind == "vdp":
        mu = 0.5 + 7.5 * torch.rand(batch, generator=g, dtype=dtype)
        return vdp(mu), torch.stack(
            [2 + torch.rand(batch, generator=g, dtype=dtype), torch.zeros(batch, dtype=dtype)], -1
        )
    if kind == "lotka":
        p = 0.5 + torch.rand(batch, 4, generator=g, dtype=dtype)
        return lotka(p), 0.5 + torch.rand(batch, 2, generator=g, dtype=dtype)
    a = torch.randn(batch, 3, 3, generator=g, dtype=dtype) - 1.5 * torch.eye(3, dtype=dtype)
    return forced_linear(a), torch.randn(batch, 3, generator=g, dtype=dtype)


def time_rows(batch: int, g: torch.Generator, n: int = 9, backward: bool = True) -> torch.Tensor:
    """Per-sample output times from a random start over a random span; with ``backward`` every
    other row runs backwards over a short span (Van der Pol, unstable backwards, goes forward)."""
    rows = []
    for b in range(batch):
        t0 = float(torch.rand((), generator=g, dtype=D))
        back = backward and b % 2 == 1
        span = (0.5 if back else 2 + 4 * float(torch.rand((), generator=g, dtype=D))) * (-1 if back else 1)
        rows.append(t0 + torch.linspace(0, span, n, dtype=D))
    return torch.stack(rows)


def assert_same_steps(comp, eager):
    for name in ("steps", "accepted", "rejected", "nfe"):
        assert torch.equal(getattr(comp.stats.per_sample, name), getattr(eager.stats.per_sample, name)), name
    assert comp.stats.nfe == eager.stats.nfe


@pytest.mark.parametrize(
    "method, kind",
    [("dopri5", "vdp"), ("tsit5", "lotka"), ("bosh3", "linear"), ("dopri8", "vdp"), ("heun", "lotka")],
)
def test_compiled_rows_take_the_eager_steps(method, kind):
    """Continuous extension (dopri5, tsit5), Hermite with (bosh3) and without (heun: f(t1, y1)
    evaluated for the outputs) a carried derivative, landing on the outputs (dopri8)."""
    g = torch.Generator().manual_seed(["dopri5", "tsit5", "bosh3", "dopri8", "heun"].index(method))
    batch = 7
    f, y0 = family(kind, batch, g)
    step = Adaptive(rtol=1e-4, atol=1e-6) if method == "heun" else Adaptive(rtol=1e-7, atol=1e-9)
    for t in (torch.linspace(0, 5, 11, dtype=D), time_rows(batch, g, backward=kind != "vdp")):
        eager = odeflow.solve(f, y0, t, method=method, step=step, per_sample=True)
        comp = odeflow.solve(f, y0, t, method=method, step=step, per_sample=True, compile=True)
        assert_same_steps(comp, eager)
        torch.testing.assert_close(comp.ys, eager.ys, rtol=1e-10, atol=1e-10)


def test_compiled_steps_past_many_outputs():
    """Dense outputs: steps that pass one, two (written from the compiled step) and more
    (written eagerly) outputs of a row."""
    g = torch.Generator().manual_seed(9)
    f, y0 = family("linear", 5, g)
    t = torch.linspace(0, 5, 151, dtype=D)
    step = Adaptive(rtol=1e-5, atol=1e-7)
    eager = odeflow.solve(f, y0, t, step=step, per_sample=True)
    comp = odeflow.solve(f, y0, t, step=step, per_sample=True, compile=True)
    assert int(eager.stats.per_sample.accepted.min()) * 3 < 150  # some steps pass 3+ outputs
    assert_same_steps(comp, eager)
    torch.testing.assert_close(comp.ys, eager.ys, rtol=1e-10, atol=1e-10)


def test_compiled_with_compaction_takes_the_eager_steps():
    """Full-batch steps compiled, the compacted ones (fewer rows) eager: the same result."""
    g = torch.Generator().manual_seed(5)
    batch = 8
    mu = 0.5 + 5 * torch.rand(batch, generator=g, dtype=D)
    y0 = torch.stack([2 + torch.rand(batch, generator=g, dtype=D), torch.zeros(batch, dtype=D)], -1)
    t = torch.stack([torch.linspace(0, 1 + b, 6, dtype=D) for b in range(batch)])  # rows finish one by one

    def f(tt, y, rows):
        return vdp(mu[rows])(tt, y)

    opts = PerSample(compact=0.6)
    eager = odeflow.solve(f, y0, t, per_sample=opts)
    comp = odeflow.solve(f, y0, t, per_sample=opts, compile=True)
    assert int(comp.stats.per_sample.nfe.min()) < comp.stats.nfe  # compaction did happen
    assert_same_steps(comp, eager)
    torch.testing.assert_close(comp.ys, eager.ys, rtol=1e-10, atol=1e-10)


class Field(nn.Module):
    """A neural field with a time scale per row: s_b net([y, t])."""

    def __init__(self, batch: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 2)).to(D)
        self.scale = nn.Parameter(torch.linspace(0.3, 3.0, batch, dtype=D))

    def forward(self, t, y):
        return self.scale[:, None] * self.net(torch.cat([y, t[:, None]], -1))


def test_compiled_backpropagation_equals_eager():
    g = torch.Generator().manual_seed(3)
    batch = 6
    torch.manual_seed(3)
    field = Field(batch)
    y0 = torch.randn(batch, 2, generator=g, dtype=D).requires_grad_()
    t = time_rows(batch, g, n=7)
    w = torch.randn(7, batch, 2, generator=g, dtype=D)
    step = Adaptive(rtol=1e-7, atol=1e-9)
    params = (y0, *field.parameters())
    out = []
    for compile in (False, True):
        sol = odeflow.solve(field, y0, t, method="tsit5", step=step, per_sample=True, compile=compile)
        out.append((sol, torch.autograd.grad((sol.ys * w).sum(), params)))
    (eager, g_eager), (comp, g_comp) = out
    assert_same_steps(comp, eager)
    torch.testing.assert_close(comp.ys, eager.ys, rtol=1e-10, atol=1e-10)
    for a, b in zip(g_comp, g_eager):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
        assert float(b.abs().max()) > 0


def test_compiled_float32_close_to_eager():
    g = torch.Generator().manual_seed(4)
    f, y0 = family("lotka", 5, g, dtype=torch.float32)
    t = torch.linspace(0, 4, 9)
    step = Adaptive(rtol=1e-4, atol=1e-6)
    eager = odeflow.solve(f, y0, t, step=step, per_sample=True)
    comp = odeflow.solve(f, y0, t, step=step, per_sample=True, compile=True)
    assert comp.ys.dtype == torch.float32
    # float32 rounding inside fused kernels may move a step's decision: counts within one step
    diff = (comp.stats.per_sample.accepted - eager.stats.per_sample.accepted).abs()
    assert int(diff.max()) <= 1
    torch.testing.assert_close(comp.ys, eager.ys, rtol=1e-4, atol=1e-5)


def test_compiled_max_steps_names_the_sample():
    mu = torch.tensor([0.5, 1000.0], dtype=D)
    y0 = torch.tensor([[2.0, 0.0], [2.0, 0.0]], dtype=D)
    with pytest.raises(SolverError, match="max_steps=2000 in sample 1"):
        odeflow.solve(vdp(mu), y0, [0.0, 50.0], step=Adaptive(max_steps=2000), per_sample=True, compile=True)
