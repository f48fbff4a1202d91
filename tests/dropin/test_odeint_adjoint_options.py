"""odeint_adjoint's output node: ys.grad_fn is the adjoint's own autograd node, its
``adjoint_options`` is the dict the backward solve uses (norm always a callable in torchdiffeq's
layout), and a norm replaced there before backward() is the one used."""

import pytest
import torch

import odeflow

SHAPES = [(), (1,), (2, 2)]
KINDS = ["default", "empty", "seminorm"]


def _kwargs(kind):
    return {"default": {}, "empty": dict(adjoint_options={}), "seminorm": dict(adjoint_options=dict(norm="seminorm"))}[
        kind
    ]


def _expected_norm(parts, shape, seminorm):
    """torchdiffeq's adjoint norm: max(|t|, RMS y, RMS adj_y[, RMS of each parameter gradient])."""
    t, y, adj_y, p1, p2 = parts
    assert t.shape == () and y.shape == shape and adj_y.shape == shape and p1.shape == (7,) and p2.shape == ()
    out = max(t.abs(), y.pow(2).mean().sqrt(), adj_y.pow(2).mean().sqrt())
    return out if seminorm else max(out, p1.pow(2).mean().sqrt(), p2.abs())


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", KINDS)
def test_output_node_carries_adjoint_options_and_a_replaced_norm_is_used(shape, kind):
    params = (torch.rand(7, requires_grad=True), torch.rand((), requires_grad=True))
    xs = odeflow.odeint_adjoint(
        lambda t, x: x, torch.full(shape, 1.0), torch.tensor([0.0, 1.0]), adjoint_params=params, **_kwargs(kind)
    )
    node = xs.grad_fn
    assert "Adjoint" in type(node).__name__  # straight from the adjoint's autograd function
    inner = node.adjoint_options["norm"]
    calls = []

    def spy(parts):
        got, want = inner(parts), _expected_norm(parts, shape, kind == "seminorm")
        assert isinstance(got, torch.Tensor) and got.shape == want.shape
        assert float((got - want).abs()) < 1e-6
        calls.append(1)
        return got

    node.adjoint_options["norm"] = spy
    xs.sum().backward()
    assert calls, "the replaced norm was not used by the backward solve"
    assert torch.allclose(params[0].grad, torch.zeros(7)) and params[1].grad is not None


def test_changed_step_options_in_grad_fn_change_the_backward_solve():
    """adjoint_options['step_size'] replaced through grad_fn: the backward solve takes those steps."""
    steps = []

    class F(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.k = torch.nn.Parameter(torch.tensor(1.0, dtype=torch.float64))

        def forward(self, t, y):
            return -self.k * y

        def callback_step_adjoint(self, t0, y0, dt):
            steps.append(float(dt))

    f = F()
    ys = odeflow.odeint_adjoint(
        f,
        torch.ones(2, dtype=torch.float64),
        torch.tensor([0.0, 1.0], dtype=torch.float64),
        method="rk4",
        options=dict(step_size=0.1),
    )
    assert ys.grad_fn.adjoint_options["step_size"] == 0.1
    ys.grad_fn.adjoint_options["step_size"] = 0.25
    ys.sum().backward()
    assert len(steps) == 4 and all(abs(s - 0.25) < 1e-12 for s in steps)


@pytest.mark.parametrize("shape", SHAPES)
def test_adjoint_norm_values_match_torchdiffeq(shape):
    """The default adjoint norm in grad_fn.adjoint_options computes what torchdiffeq's does."""
    torchdiffeq = pytest.importorskip("torchdiffeq")
    gen = torch.Generator().manual_seed(len(shape))
    parts = (
        torch.randn((), generator=gen),
        torch.randn(shape, generator=gen),
        torch.randn(shape, generator=gen),
        torch.randn(7, generator=gen),
        torch.randn((), generator=gen),
    )
    norms = []
    for lib in (odeflow, torchdiffeq):
        params = (torch.rand(7, requires_grad=True), torch.rand((), requires_grad=True))
        xs = lib.odeint_adjoint(lambda t, x: x, torch.full(shape, 1.0), torch.tensor([0.0, 1.0]), adjoint_params=params)
        norms.append(float(xs.grad_fn.adjoint_options["norm"](parts)))
    assert abs(norms[0] - norms[1]) < 1e-6


@pytest.mark.parametrize("shapes", [((), (1,)), ((2, 2), (3,))])
@pytest.mark.parametrize("kind", KINDS)
def test_tuple_state_node_and_norm_like_torchdiffeq(shapes, kind):
    """Tuple states: each output is View <- Slice <- the adjoint node (torchdiffeq's layout), and
    the node's norm (it receives flat y and adj_y) gives torchdiffeq's values."""
    torchdiffeq = pytest.importorskip("torchdiffeq")
    gen = torch.Generator().manual_seed(len(shapes[0]))
    n = sum(torch.Size(s).numel() for s in shapes)
    parts = (
        torch.randn((), generator=gen),
        torch.randn(n, generator=gen),
        torch.randn(n, generator=gen),
        torch.randn(7, generator=gen),
        torch.randn((), generator=gen),
    )
    values = []
    for lib in (odeflow, torchdiffeq):
        params = (torch.rand(7, requires_grad=True), torch.rand((), requires_grad=True))
        xs = lib.odeint_adjoint(
            lambda t, x: (x[0], -x[1]),
            tuple(torch.ones(s) for s in shapes),
            torch.tensor([0.0, 1.0]),
            adjoint_params=params,
            **_kwargs(kind),
        )
        node = xs[0].grad_fn.next_functions[0][0].next_functions[0][0]
        values.append(float(node.adjoint_options["norm"](parts)))
        if lib is odeflow:
            assert "Adjoint" in type(node).__name__
            sum(x.sum() for x in xs).backward()
            assert params[0].grad is not None
    assert abs(values[0] - values[1]) < 1e-6
