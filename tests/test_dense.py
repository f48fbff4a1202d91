"""odeint_dense: y(t) anywhere in [t0, t1] from one solve, as torchdiffeq.odeint_dense."""

import pytest
import torch

import odeflow

D = torch.float64


def test_dense_output_is_accurate_and_matches_torchdiffeq():
    torchdiffeq = pytest.importorskip("torchdiffeq")
    f = lambda t, y: torch.stack([y[1], -y[0]])  # noqa: E731
    y0 = torch.tensor([1.0, 0.0], dtype=D)
    ours = odeflow.odeint_dense(f, y0, torch.tensor(0.0, dtype=D), torch.tensor(3.0, dtype=D), rtol=1e-9, atol=1e-11)
    theirs = torchdiffeq.odeint_dense(
        f, y0, torch.tensor(0.0, dtype=D), torch.tensor(3.0, dtype=D), rtol=1e-9, atol=1e-11
    )
    q = torch.tensor([0.0, 0.37, 1.5, 2.99], dtype=D)
    a = ours(q)
    assert a.shape == (4, 2)
    assert torch.allclose(a[:, 0], torch.cos(q), atol=1e-8)
    assert torch.allclose(a, torch.stack([theirs(v) for v in q]), atol=1e-7)


def test_dense_needs_increasing_times_and_tensor_state():
    with pytest.raises(ValueError, match="t0 < t1"):
        odeflow.odeint_dense(lambda t, y: -y, torch.ones(1), 1.0, 0.0)
    with pytest.raises(TypeError, match="tuple"):
        odeflow.odeint_dense(lambda t, y: y, (torch.ones(1),), 0.0, 1.0)
