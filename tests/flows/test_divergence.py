"""Batched exact divergence: equal to the one-VJP-per-dimension loop, values and gradients."""

import pytest
import torch

from odeflow.flows import jacobian_rows, trace_and_frobenius_batched, trace_and_frobenius_exact
from odeflow.nn import ODENet


@pytest.mark.parametrize("activation, dim", [("tanh", 6), ("softplus", 21), ("softplus", 63)])
def test_batched_equals_loop_values_and_parameter_gradients(activation, dim):
    net = ODENet(dim, (2 * dim, 2 * dim), activation=activation).double()
    z = torch.randn(9, dim, dtype=torch.float64, requires_grad=True)
    f = net(torch.tensor(0.4, dtype=torch.float64), z)
    loop = trace_and_frobenius_exact(f, z, True)
    batched = trace_and_frobenius_batched(f, z, True)
    torch.testing.assert_close(batched[0], loop[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(batched[1], loop[1], rtol=1e-12, atol=1e-12)
    params = [p for p in net.parameters()]
    g_loop = torch.autograd.grad(
        (loop[0] + loop[1]).sum(), params, retain_graph=True, allow_unused=True, materialize_grads=True
    )
    g_batched = torch.autograd.grad((batched[0] + batched[1]).sum(), params, allow_unused=True, materialize_grads=True)
    for a, b in zip(g_batched, g_loop):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_jacobian_rows_match_autograd_jacobian_per_sample():
    net = ODENet(5, (16,), activation="tanh").double()
    t = torch.tensor(0.2, dtype=torch.float64)
    z = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    J = jacobian_rows(net(t, z), z, False)
    for b in range(3):
        ref = torch.autograd.functional.jacobian(lambda v: net(t, v.reshape(1, 5)).reshape(5), z[b].detach())
        torch.testing.assert_close(J[b], ref, rtol=1e-12, atol=1e-12)
