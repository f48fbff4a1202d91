"""CNF dynamics through torch.func (`CNFDynamics`, `CNF(compile=True)`): the same rates as the
autograd path, and a compiled CNF whose loss, log-probabilities and parameter gradients equal
the eager CNF's in float64 (issue 18, item 1)."""

import shutil

import pytest
import torch

from odeflow import FixedStep
from odeflow.flows import CNF
from odeflow.flows.divergence import divergence_hutchinson, trace_and_frobenius_batched
from odeflow.flows.functional_divergence import CNFDynamics, hutchinson_func, trace_and_frobenius_func
from odeflow.nn import ODENet

D = torch.float64
needs_compiler = pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None, reason="compile=True needs a C++ compiler"
)


def _net(dim=3, hidden=(8,)):
    torch.manual_seed(0)
    return ODENet(dim, hidden, layer="concatsquash").double()


def test_func_trace_frobenius_and_hutchinson_equal_autograd():
    net = _net()
    t = torch.tensor(0.3, dtype=D)
    z = torch.randn(5, 3, dtype=D, requires_grad=True)
    f_ref = net(t, z)
    div_ref, frob_ref = trace_and_frobenius_batched(f_ref, z, False)
    f, div, frob = trace_and_frobenius_func(net, t, z.detach())
    torch.testing.assert_close(f, f_ref.detach(), rtol=0, atol=1e-14)
    torch.testing.assert_close(div, div_ref, rtol=0, atol=1e-13)
    torch.testing.assert_close(frob, frob_ref, rtol=0, atol=1e-13)
    e = torch.randn(5, 3, dtype=D)
    h_ref, eJ_ref = divergence_hutchinson(f_ref, z, e, False)
    _, h, eJ = hutchinson_func(net, t, z.detach(), e)
    torch.testing.assert_close(h, h_ref, rtol=0, atol=1e-13)
    torch.testing.assert_close(eJ, eJ_ref, rtol=0, atol=1e-13)


@pytest.mark.parametrize("divergence", ["exact", "hutchinson"])
def test_dynamics_module_equals_cnf_rates_and_parameter_gradients(divergence):
    """Same augmented rates (f, -tr J, E', n') and the same d/dtheta of a weighted sum."""
    flow = CNF(_net(), 3, divergence=divergence)
    dyn = CNFDynamics(flow.net, 3, divergence, regularize=True)
    z = torch.randn(4, 3, dtype=D)
    e = torch.randn(4, 3, dtype=D)
    flow._e = e
    dyn.set_noise(e)
    t = torch.tensor(0.2, dtype=D)
    zero = torch.zeros(4, dtype=D)
    w = torch.linspace(-1, 1, 4, dtype=D)
    results = []
    for field in (flow._augmented, dyn):
        flow.zero_grad()
        out = field(t, (z.clone().requires_grad_(True), zero, zero, zero))
        sum((o * w if o.dim() == 1 else o * w[:, None]).sum() for o in out).backward()
        results.append(([o.detach() for o in out], [p.grad.clone() for p in flow.net.parameters()]))
    for a, b in zip(results[0][0] + results[0][1], results[1][0] + results[1][1]):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_dynamics_rejects_bad_divergence_and_missing_noise():
    with pytest.raises(ValueError, match="unknown divergence 'trace'"):
        CNFDynamics(_net(), 3, "trace", False)
    dyn = CNFDynamics(_net(), 3, "hutchinson", False)
    with pytest.raises(ValueError, match="Hutchinson noise must have the state's shape"):
        dyn(torch.tensor(0.0, dtype=D), (torch.zeros(2, 3, dtype=D), torch.zeros(2, dtype=D)))


def test_compile_flow_state_dict_matches_eager_layout():
    """The cached torch.func field is not a submodule: checkpoints do not change with compile."""
    eager, comp = CNF(_net(), 3), CNF(_net(), 3, compile=True)
    comp.dynamics(True)
    assert list(eager.state_dict()) == list(comp.state_dict())
    assert len(list(comp.parameters())) == len(list(eager.parameters()))


def _run(compile, divergence, adjoint, regularize):
    flow = CNF(
        _net(2, (8,)),
        2,
        T=0.5,
        divergence=divergence,
        method="rk4",
        step=FixedStep(0.125),
        adjoint=adjoint,
        kinetic=0.1 if regularize else 0.0,
        jacobian=0.1 if regularize else 0.0,
        compile=compile,
    )
    x = torch.tensor([[0.3, -1.2], [1.5, 0.4], [-0.7, 0.9]], dtype=D)
    torch.manual_seed(1)  # the Hutchinson noise
    loss, _ = flow.loss(x)
    loss.backward()
    torch.manual_seed(2)
    with torch.no_grad():
        lp = flow.log_prob(x)
    return loss.detach(), lp, [p.grad.clone() for p in flow.parameters()], flow.last_stats


@needs_compiler
@pytest.mark.slow  # compiles a CNF solve and its backward: minutes on a shared 2-core machine
@pytest.mark.parametrize(
    "divergence, adjoint, regularize",
    [
        ("exact", False, True),  # Disc-Opt rk4, RNODE terms
        ("hutchinson", False, False),  # Disc-Opt rk4
        ("exact", True, False),  # Opt-Disc rk4 (compiled adjoint)
        ("hutchinson", True, True),  # Opt-Disc rk4, RNODE terms
    ],
)
def test_compiled_cnf_equals_eager(divergence, adjoint, regularize):
    loss_e, lp_e, g_e, stats_e = _run(False, divergence, adjoint, regularize)
    loss_c, lp_c, g_c, stats_c = _run(True, divergence, adjoint, regularize)
    torch.testing.assert_close(loss_c, loss_e, rtol=0, atol=1e-10)
    torch.testing.assert_close(lp_c, lp_e, rtol=0, atol=1e-10)
    assert len(g_c) == len(g_e) > 0
    for a, b in zip(g_c, g_e):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
    assert stats_c.nfe == stats_e.nfe > 0
