"""Every torchdiffeq method through the drop-in: same numbers as torchdiffeq 0.2.5 on the same
problem, forward and reverse time, float32 and float64, odeint and odeint_adjoint."""

import warnings

import pytest
import torch
from torch import nn

import odeflow

torchdiffeq = pytest.importorskip("torchdiffeq")


class Field(nn.Module):
    def __init__(self, dtype):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 3)).to(dtype)

    def forward(self, t, y):
        return self.net(y) * torch.cos(t)


# (method, options, adaptive?): fixed grids agree to rounding, adaptive ones to the solver
# tolerance (the step controllers differ: PI here, I in torchdiffeq).
CASES = [
    ("euler", dict(step_size=0.01), False),
    ("midpoint", dict(step_size=0.02), False),
    ("heun2", dict(step_size=0.02), False),
    ("heun3", dict(step_size=0.05), False),
    ("rk4", dict(step_size=0.03), False),
    ("rk4", None, False),
    ("explicit_adams", dict(step_size=0.01), False),
    ("implicit_adams", dict(step_size=0.01), False),
    ("dopri5", None, True),
    ("bosh3", None, True),
    ("fehlberg2", None, True),
    ("adaptive_heun", None, True),
    ("dopri8", None, True),
]
LOW_ORDER = {"adaptive_heun", "fehlberg2"}
# dtype: (rtol, atol, agreement of fixed grids, agreement of adaptive solves)
SETTINGS = {torch.float64: (1e-8, 1e-10, 1e-12, 2e-5), torch.float32: (1e-5, 1e-7, 2e-5, 3e-3)}


@pytest.mark.parametrize("method,options,adaptive", CASES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("dtype", list(SETTINGS))
def test_odeint_matches_torchdiffeq(method, options, adaptive, reverse, dtype):
    rtol, atol, tol_fixed, tol_adaptive = SETTINGS[dtype]
    if method in LOW_ORDER and dtype == torch.float64:  # second order: keep the step count small
        rtol, atol = rtol * 100, atol * 100
    func = Field(dtype)
    y0 = torch.randn(4, 3, dtype=dtype)
    t = torch.linspace(0, 1, 7, dtype=dtype)
    t = t.flip(0) if reverse else t
    kw = dict(method=method, options=options, rtol=rtol, atol=atol)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = odeflow.odeint(func, y0, t, **kw)
        theirs = torchdiffeq.odeint(func, y0, t, **kw)
    assert ours.shape == theirs.shape == (7, 4, 3) and ours.dtype == dtype
    assert float((ours - theirs).abs().max()) < (tol_adaptive * rtol / SETTINGS[dtype][0] if adaptive else tol_fixed)
    if adaptive and dtype == torch.float64:  # and at least as accurate as torchdiffeq
        with torch.no_grad():
            ref = odeflow.odeint(func, y0, t, rtol=1e-12, atol=1e-13)
        assert float((ours - ref).abs().max()) <= 2 * float((theirs - ref).abs().max()) + 1e-9


ADJOINT_CASES = [
    ("rk4", dict(step_size=0.05), 1e-7),
    ("dopri5", None, 1e-6),
    ("bosh3", None, 1e-3),
    ("euler", dict(step_size=0.01), 1e-9),
    ("heun3", dict(step_size=0.05), 1e-7),
]


@pytest.mark.parametrize("method,options,tol", ADJOINT_CASES)
@pytest.mark.parametrize("reverse", [False, True])
def test_odeint_adjoint_gradients_match_torchdiffeq(method, options, tol, reverse):
    func = Field(torch.float64)
    y0 = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    t = torch.linspace(0, 1, 5, dtype=torch.float64)  # intervals on the fixed grids of both
    t = t.flip(0) if reverse else t
    grads = []
    for lib in (odeflow, torchdiffeq):
        rtol = 1e-7 if method == "bosh3" else 1e-9
        out = lib.odeint_adjoint(func, y0, t, method=method, options=options, rtol=rtol, atol=rtol * 1e-2)
        grads.append(torch.autograd.grad(out.pow(2).sum(), [y0, *func.parameters()]))
    assert max(float((a - b).abs().max()) for a, b in zip(*grads)) < tol


@pytest.mark.parametrize("method", ["explicit_adams", "implicit_adams"])
def test_adams_adjoint_gradient_is_close_to_the_exact_one(method):
    """The adjoint of a multistep method: within its discretisation error of the exact gradient
    (torchdiffeq's own Adams adjoint is 2.5-6x further away on this problem)."""
    func = Field(torch.float64)
    y0 = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    t = torch.linspace(0, 1, 4, dtype=torch.float64)
    ref = torch.autograd.grad(odeflow.odeint(func, y0, t, rtol=1e-12, atol=1e-12).pow(2).sum(), y0)[0]
    out = odeflow.odeint_adjoint(func, y0, t, method=method, options=dict(step_size=0.05))
    assert float((torch.autograd.grad(out.pow(2).sum(), y0)[0] - ref).abs().max()) < 1e-3


def test_rk4_is_the_three_eighths_rule_in_the_dropin_and_classic_in_solve():
    f = lambda t, y: y * torch.sin(t)  # noqa: E731
    y0 = torch.ones(1, dtype=torch.float64)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    dropin = odeflow.odeint(f, y0, t, method="rk4")
    assert torch.equal(dropin, odeflow.solve(f, y0, t, method="rk4_38").ys)
    assert torch.allclose(dropin, torchdiffeq.odeint(f, y0, t, method="rk4"), rtol=0, atol=1e-15)
    classic = odeflow.solve(f, y0, t, method="rk4").ys
    assert 1e-4 < float((dropin - classic).abs().max()) < 1e-1  # one step of size 1: different schemes


def test_tuple_state_default_norm_is_the_mixed_norm():
    """Tuple states: torchdiffeq's max-over-components RMS norm by default, so a small component
    is controlled as tightly as in torchdiffeq."""
    func = lambda t, s: (-s[1], s[0], -0.01 * s[2])  # noqa: E731
    y0 = (torch.ones(50, dtype=torch.float64), torch.zeros(50, dtype=torch.float64), torch.ones(1, dtype=torch.float64))
    t = torch.linspace(0, 3, 5, dtype=torch.float64)
    for a, b in zip(
        odeflow.odeint(func, y0, t, rtol=1e-6, atol=1e-8), torchdiffeq.odeint(func, y0, t, rtol=1e-6, atol=1e-8)
    ):
        assert torch.allclose(a, b, atol=1e-6)


def test_unknown_method_lists_torchdiffeq_names():
    with pytest.raises(ValueError, match="implicit_adams.*scipy_solver|scipy_solver.*implicit_adams"):
        odeflow.odeint(lambda t, y: -y, torch.ones(1), torch.tensor([0.0, 1.0]), method="rk45")
