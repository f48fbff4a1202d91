"""RNODE regularizers (seed 001): kinetic energy and Jacobian Frobenius integrals of a CNF."""

import pytest
import torch

import odeflow
from odeflow.flows import CNF, divergence_hutchinson, sample_noise, trace_and_frobenius_exact
from odeflow.nn import ODENet

TIGHT = odeflow.Adaptive(1e-10, 1e-10)


def make_flow(
    adjoint=False, divergence="exact", method="dopri5", step=TIGHT, kinetic=0.1, jacobian=0.2, seed=0, zero_init=False
):
    torch.manual_seed(seed)
    net = ODENet(2, (16, 16), layer="concatsquash", zero_init=zero_init)
    return CNF(
        net,
        2,
        T=0.5,
        divergence=divergence,
        method=method,
        step=step,
        adjoint=adjoint,
        kinetic=kinetic,
        jacobian=jacobian,
    ).double()


def test_exact_frobenius_equals_norm_of_autograd_jacobian():
    net = ODENet(3, (16,)).double()
    z = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    t = torch.tensor(0.2, dtype=torch.float64)
    _, frob = trace_and_frobenius_exact(net(t, z), z, False)
    for i in range(5):
        J = torch.autograd.functional.jacobian(lambda v: net(t, v.reshape(1, 3)).reshape(3), z[i].detach())
        assert float(frob[i]) == pytest.approx(float((J * J).sum()), rel=1e-12)


@pytest.mark.parametrize("noise", ["gaussian", "rademacher"])
def test_hutchinson_frobenius_estimate_is_unbiased(noise):
    net = ODENet(4, (16,)).double()
    z = torch.randn(1, 4, dtype=torch.float64, requires_grad=True)
    f = net(torch.tensor(0.3, dtype=torch.float64), z)
    _, exact = trace_and_frobenius_exact(f, z, False)
    gen = torch.Generator().manual_seed(1)
    draws = torch.stack(
        [divergence_hutchinson(f, z, sample_noise(z, noise, gen), False)[1].pow(2).sum() for _ in range(4000)]
    )
    se = draws.std() / draws.numel() ** 0.5
    assert abs(float(draws.mean() - exact)) < 4 * float(se)


def test_regularizer_integrals_match_quadrature_along_the_trajectory():
    flow = make_flow()
    x = torch.randn(4, 2, dtype=torch.float64)
    with torch.no_grad():
        _, _, E, n = flow.integrate(x, regularize=True)
        ts = torch.linspace(0, 0.5, 401, dtype=torch.float64)
        zs = odeflow.solve(lambda t, z: flow.net(t, z), x, ts, method="dopri5", step=TIGHT).ys
    kin, frob = [], []
    for t, z in zip(ts, zs):
        z = z.clone().requires_grad_(True)
        f = flow.net(t, z)
        _, fr = trace_and_frobenius_exact(f, z, False)
        kin.append(0.5 * (f * f).mean(dim=1).detach())
        frob.append(fr / 2)
    assert torch.allclose(E, torch.trapezoid(torch.stack(kin), ts, dim=0), rtol=1e-4)
    assert torch.allclose(n, torch.trapezoid(torch.stack(frob), ts, dim=0), rtol=1e-4)


def test_regularizers_stay_out_of_the_error_norm():
    x = torch.randn(16, 2, dtype=torch.float64)
    flow = make_flow(step=odeflow.Adaptive(1e-5, 1e-5))
    with torch.no_grad():
        flow.integrate(x, regularize=False)
        plain = flow.last_stats.nfe
        flow.integrate(x, regularize=True)
    assert flow.last_stats.nfe == plain


@pytest.mark.parametrize("adjoint", [False, True])
@pytest.mark.parametrize("divergence", ["exact", "hutchinson"])
def test_regularizers_add_no_vector_jacobian_products(monkeypatch, adjoint, divergence):
    calls = {"n": 0}
    grad = torch.autograd.grad

    def counting_grad(*args, **kwargs):
        calls["n"] += 1
        return grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", counting_grad)
    x = torch.randn(8, 2, dtype=torch.float64)
    counts = []
    for lam in (0.0, 0.1):
        flow = make_flow(
            adjoint=adjoint, divergence=divergence, method="rk4", step=odeflow.FixedStep(0.1), kinetic=lam, jacobian=lam
        )
        calls["n"] = 0
        loss, parts = flow.loss(x)
        loss.backward()
        counts.append((calls["n"], flow.last_stats.nfe, flow.last_stats.nfe_backward))
        assert ("kinetic" in parts) == (lam > 0)
    assert counts[0] == counts[1] and counts[0][0] > 0


def test_regularized_loss_gradients_agree_between_modes():
    x = torch.randn(6, 2, dtype=torch.float64)
    grads = []
    for adjoint in (False, True):
        flow = make_flow(adjoint=adjoint)
        loss, parts = flow.loss(x)
        loss.backward()
        assert float(parts["kinetic"]) > 0 and float(parts["jacobian"]) > 0
        grads.append(torch.cat([p.grad.reshape(-1) for p in flow.parameters()]))
    assert torch.allclose(grads[0], grads[1], rtol=1e-6, atol=1e-9)


def test_zero_initialised_flow_starts_as_the_identity():
    flow = make_flow(zero_init=True)
    x = torch.randn(5, 2, dtype=torch.float64)
    with torch.no_grad():
        z, ld, E, n = flow.integrate(x, regularize=True)
    assert torch.equal(z, x) and float(ld.abs().max()) == 0 and float(E.max()) == 0 and float(n.max()) == 0


def test_negative_coefficients_are_rejected():
    with pytest.raises(ValueError, match="RNODE coefficients"):
        make_flow(kinetic=-1.0)


def test_stack_loss_adds_every_blocks_regularizers():
    from odeflow.flows import CNFStack

    blocks = [make_flow(seed=k, kinetic=0.1 * (k + 1), jacobian=0.0) for k in range(2)]
    stack = CNFStack(blocks)
    x = torch.randn(5, 2, dtype=torch.float64)
    loss, parts = stack.loss(x)
    with torch.no_grad():
        z1, l1, E1, _ = blocks[0].integrate(x, regularize=True)
        z2, l2, E2, _ = blocks[1].integrate(z1, regularize=True)
        nll = -(stack.log_prob(x)).mean()
    assert float(parts["nll"]) == pytest.approx(float(nll), rel=1e-10)
    assert float(loss.detach()) == pytest.approx(float(nll + 0.1 * E1.mean() + 0.2 * E2.mean()), rel=1e-10)
    loss.backward()
    assert all(p.grad is not None for p in stack.parameters())
