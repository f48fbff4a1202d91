"""The torchdiffeq-compatible door: same call, same shapes, same answers."""

import pytest
import torch
from torch import nn

import odeflow

torchdiffeq = pytest.importorskip("torchdiffeq")


class Field(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 3)).double()

    def forward(self, t, y):
        return self.net(y) * torch.cos(t)


T = torch.linspace(0, 1, 6, dtype=torch.float64)


@pytest.mark.parametrize(
    "method,options",
    [("dopri5", None), ("bosh3", None), ("rk4", dict(step_size=0.01)), ("euler", dict(step_size=0.001)), ("rk4", None)],
)
def test_matches_torchdiffeq(method, options):
    func = Field()
    y0 = torch.randn(5, 3, dtype=torch.float64)
    ours = odeflow.odeint(func, y0, T, rtol=1e-9, atol=1e-11, method=method, options=options)
    theirs = torchdiffeq.odeint(func, y0, T, rtol=1e-9, atol=1e-11, method=method, options=options)
    assert ours.shape == theirs.shape == (6, 5, 3)
    # Fixed grids: the same scheme (rk4 is the 3/8 rule in both) gives the same numbers.
    tol = 1e-7 if method in ("dopri5", "bosh3") else 1e-12
    assert torch.allclose(ours, theirs, atol=tol)


def test_tuple_state_matches_torchdiffeq():
    func = lambda t, s: (-s[1], s[0])  # noqa: E731
    y0 = (torch.ones(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64))
    ours = odeflow.odeint(func, y0, T)
    theirs = torchdiffeq.odeint(func, y0, T)
    for a, b in zip(ours, theirs):
        assert torch.allclose(a, b, atol=1e-7)


def test_adjoint_matches_torchdiffeq_gradients():
    func = Field()
    y0 = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    grads = []
    for lib in (odeflow, torchdiffeq):
        out = lib.odeint_adjoint(func, y0, T, rtol=1e-10, atol=1e-12, adjoint_options=dict(norm="seminorm"))
        grads.append(torch.autograd.grad(out.pow(2).sum(), [y0, *func.parameters()]))
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-7)


def test_options_are_translated():
    y0 = torch.ones(1, dtype=torch.float64)
    out = odeflow.odeint(lambda t, y: -y, y0, T, options=dict(first_step=0.1, max_num_steps=1000))
    assert torch.allclose(out[:, 0], torch.exp(-T), atol=1e-7)
    with pytest.raises(odeflow.SolverError):
        odeflow.odeint(lambda t, y: -y, y0, T, options=dict(max_num_steps=2))


def test_unknown_option_is_named_in_a_warning():
    """torchdiffeq ignores unknown options with a warning; so does the drop-in, naming them."""
    with pytest.warns(UserWarning, match="jump_tt"):
        odeflow.odeint(lambda t, y: -y, torch.ones(1), T, options=dict(jump_tt=[0.5]))
