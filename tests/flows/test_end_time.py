"""TO-FLOW (seed 004): the end-time gradient, alpha |T| and clipping of a learnable T."""

import pytest
import torch

import odeflow
from odeflow.flows import CNF, EndTimeOptimizer, end_time_gradient
from odeflow.nn import ODENet

TIGHT = odeflow.Adaptive(1e-10, 1e-10)


def make_flow(adjoint=False, kinetic=0.05, jacobian=0.1, train_T=True):
    torch.manual_seed(3)
    net = ODENet(2, (16, 16), layer="concatsquash")
    return CNF(
        net,
        2,
        T=0.5,
        train_T=train_T,
        divergence="exact",
        method="dopri5",
        step=TIGHT,
        adjoint=adjoint,
        kinetic=kinetic,
        jacobian=jacobian,
    ).double()


@pytest.mark.parametrize("adjoint", [False, True])
@pytest.mark.parametrize("lam", [0.0, 0.1])
def test_end_time_gradient_matches_finite_difference_and_autograd(adjoint, lam):
    flow = make_flow(adjoint=adjoint, kinetic=lam, jacobian=lam)
    x = torch.randn(8, 2, dtype=torch.float64)
    loss, parts = flow.loss(x)
    loss.backward()
    g = float(end_time_gradient(flow, parts["z_T"]))
    eps = 1e-5
    values = []
    with torch.no_grad():
        for sign in (1, -1):
            flow.T.fill_(0.5 + sign * eps)
            values.append(float(flow.loss(x)[0]))
    fd = (values[0] - values[1]) / (2 * eps)
    assert g == pytest.approx(fd, rel=1e-6)
    assert g == pytest.approx(float(flow.T.grad), rel=1e-6)


def test_step_adds_alpha_sign_T_and_moves_T_against_the_gradient():
    flow = make_flow()
    x = torch.randn(8, 2, dtype=torch.float64)
    opt = EndTimeOptimizer(flow, lr=1e-2, alpha=0.1)
    _, parts = flow.loss(x)
    expected = float(end_time_gradient(flow, parts["z_T"])) + 0.1
    used = opt.step(parts["z_T"])
    assert used == pytest.approx(expected, rel=1e-12)
    assert float(flow.T) == pytest.approx(0.5 - 1e-2 * (1 if used > 0 else -1), rel=1e-9)  # Adam's first step


@pytest.mark.parametrize("alpha, bound", [(1e3, 0.1), (-1e3, 0.9)])
def test_end_time_is_clipped_to_the_interval(alpha, bound):
    flow = make_flow()
    opt = EndTimeOptimizer(flow, lr=10.0, alpha=alpha, eps=0.1)  # a huge push either way
    x = torch.randn(8, 2, dtype=torch.float64)
    with torch.no_grad():
        _, parts = flow.loss(x)
    opt.step(parts["z_T"])
    assert float(flow.T) == pytest.approx(bound)


def test_theta_backward_skips_T_and_fixed_T_is_rejected():
    flow = make_flow()
    EndTimeOptimizer(flow)
    flow.loss(torch.randn(4, 2, dtype=torch.float64))[0].backward()
    assert flow.T.grad is None
    with pytest.raises(ValueError, match="train_T=True"):
        EndTimeOptimizer(make_flow(train_T=False))
    with pytest.raises(ValueError, match="must contain T0"):
        EndTimeOptimizer(make_flow(), eps=0.6)


def test_nll_objective_leaves_the_regularizers_out():
    flow = make_flow(kinetic=0.1, jacobian=0.1)
    x = torch.randn(8, 2, dtype=torch.float64)
    with torch.no_grad():
        _, parts = flow.loss(x)
        g = float(end_time_gradient(flow, parts["z_T"], regularizers=False))
        values = []
        for sign in (1, -1):
            flow.T.fill_(0.5 + sign * 1e-5)
            values.append(float(flow.loss(x)[1]["nll"]))
    assert g == pytest.approx((values[0] - values[1]) / 2e-5, rel=1e-6)
    with pytest.raises(ValueError, match="valid: loss, nll"):
        EndTimeOptimizer(flow, objective="likelihood")
