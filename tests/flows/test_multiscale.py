import pytest
import torch

from odeflow.flows.cnf import standard_normal_logprob
from odeflow.flows.image_transforms import bits_per_dim, logit_transform
from odeflow.flows.multiscale import ImageEndTimes, MultiscaleCNF, n_scales
from odeflow.solvers.stepping import Adaptive, FixedStep


def _random_flow(**kw) -> MultiscaleCNF:
    """A tiny flow whose blocks really move (no zero init, weights scaled up)."""
    torch.manual_seed(0)
    args = dict(scales=2, blocks=1, hidden=(6, 6, 6), pieces=2, T=0.5, alpha=0.05, zero_init=False)
    args.update(kw)
    flow = MultiscaleCNF((1, 4, 4), **args).double()
    with torch.no_grad():
        for p in flow.theta():
            p.mul_(3.0)
    return flow


def test_zero_initialised_flow_is_logit_plus_standard_normal():
    """f = 0 at the start (RNODE): bits/dim = that of N(0, I) on the logit of x (a known answer)."""
    flow = MultiscaleCNF((1, 8, 8), hidden=(4, 4, 4), alpha=1e-6, step=FixedStep(steps=2)).double()
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64)
    y, logdet = logit_transform(x, 1e-6)
    expected = bits_per_dim(standard_normal_logprob(y.reshape(3, -1)) + logdet, 64)
    assert torch.allclose(flow.bits_per_dim(x), expected, atol=1e-10)
    loss, parts = flow.loss(x)
    assert float(parts["bits_per_dim"]) == pytest.approx(float(expected.mean()), abs=1e-10)


def test_loss_gradients_reach_every_piece_and_end_time_steps_clip():
    flow = _random_flow(pieces=2, kinetic=0.01, jacobian=0.01, train_T=True, step=FixedStep(steps=4))
    x = torch.rand(4, 1, 4, 4, dtype=torch.float64)
    loss, parts = flow.loss(x)
    assert float(parts["kinetic"]) > 0 and float(parts["jacobian"]) > 0
    assert float(loss.detach()) == pytest.approx(float(parts["bits_per_dim"] + parts["kinetic"] + parts["jacobian"]))
    loss.backward()
    for cnf in flow.cnfs:
        first = cnf.net.layers[0].weight.grad
        assert first is not None and all(float(first[k].abs().sum()) > 0 for k in range(2))  # both pieces used
        assert cnf.T.grad is not None and float(cnf.T.grad) != 0
    ends = ImageEndTimes(flow, lr=1.0, alpha=0.1, eps=0.1)
    before = ends.values()
    ends.step()
    after = ends.values()
    assert all(0.1 <= t <= 0.9 for t in after) and after != before


@pytest.mark.parametrize(
    "solver",
    [
        pytest.param(dict(method="rk4", step=FixedStep(steps=4)), id="disc-opt-rk4"),
        pytest.param(
            dict(method="dopri5", step=Adaptive(1e-9, 1e-9), adjoint=True), id="opt-disc-dopri5", marks=pytest.mark.slow
        ),
    ],
)
def test_end_time_gradient_matches_finite_differences(solver):
    """The T gradient TO-FLOW uses (left in T.grad by the backward pass) is the derivative of the
    loss (Disc-Opt: of the discrete loss, rk4 4 steps on [0, T]; Opt-Disc: the adjoint's),
    including T's effect on the later blocks."""
    flow = _random_flow(divergence="exact", train_T=True, kinetic=0.01, jacobian=0.01, **solver)
    x = torch.rand(2, 1, 4, 4, dtype=torch.float64) * 0.9 + 0.05
    loss, _ = flow.loss(x)
    loss.backward()
    T = flow.cnfs[0].T
    h = 1e-5
    with torch.no_grad():
        T += h
        up = float(flow.loss(x)[0])
        T -= 2 * h
        down = float(flow.loss(x)[0])
        T += h
    assert float(T.grad) == pytest.approx((up - down) / (2 * h), rel=1e-5)


@pytest.mark.parametrize("h,w,n", [(28, 28, 3), (32, 32, 4), (8, 8, 2), (4, 4, 1), (2, 2, 1)])
def test_number_of_scales(h, w, n):
    assert n_scales(h, w) == n


def test_parameter_counts_match_to_flow_table_1():
    """TO-FLOW Table 1: 400K parameters on MNIST, 670K on CIFAR-10 (one block per group, one piece)."""
    assert sum(p.numel() for p in MultiscaleCNF((1, 28, 28)).parameters()) == 400_318
    assert sum(p.numel() for p in MultiscaleCNF((3, 32, 32)).parameters()) == 679_434


def test_latent_layout_and_bad_inputs():
    flow = MultiscaleCNF((1, 8, 8), hidden=(4, 4, 4))
    assert flow.sizes == [(1, 8, 8), (2, 4, 4)] and flow.dim == 64 and len(flow.cnfs) == 3
    assert flow.sample(2).shape == (2, 1, 8, 8)
    with pytest.raises(ValueError, match=r"shape \[batch, 1, 8, 8\]"):
        flow.log_prob(torch.rand(2, 64))
    with pytest.raises(TypeError, match="dequantize"):
        flow.log_prob(torch.zeros(2, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="divisible"):
        MultiscaleCNF((1, 6, 6), scales=3)
