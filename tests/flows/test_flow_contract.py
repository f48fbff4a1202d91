"""The contract every flow keeps, run over helpers.every_flow.EVERY_FLOW (a new flow is added
there once and gets every check): log p(x) = log N(z) + log|det dz/dx| against the autograd
Jacobian (torch.linalg.slogdet), the inverse undoes the forward map, the loss has finite
gradients in every trainable parameter, sampling gives finite points of the data's shape, and a
saved state dict loaded into a fresh flow gives the same log-density."""

from __future__ import annotations

import io

import pytest
import torch

from helpers.every_flow import EVERY_FLOW, TIGHT
from odeflow.flows import standard_normal_logprob

NAMES = sorted(EVERY_FLOW)


def _points(name: str, n: int, seed: int) -> torch.Tensor:
    return EVERY_FLOW[name].data(n, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", NAMES)
def test_log_prob_is_the_change_of_variables_of_the_flow_map(name):
    flow, x = EVERY_FLOW[name].build(TIGHT), _points(name, 1 if name == "multiscale" else 2, 0)
    shape = EVERY_FLOW[name].event_shape
    with torch.no_grad():
        log_p = flow.log_prob(x)
    for i in range(x.shape[0]):
        jac = torch.autograd.functional.jacobian(
            lambda v: flow.push_forward(v.reshape(1, *shape)).reshape(-1), x[i].reshape(-1)
        )
        sign, log_det = torch.linalg.slogdet(jac)
        z = flow.push_forward(x[i : i + 1])
        assert float(sign) != 0 and abs(float(log_det)) > 1e-2  # a flow far from the identity
        expected = standard_normal_logprob(z) + log_det
        assert float(log_p[i]) == pytest.approx(float(expected), abs=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_inverse_undoes_the_forward_map(name):
    flow, x = EVERY_FLOW[name].build(), _points(name, 5, 1)
    z = flow.push_forward(x)
    assert torch.allclose(flow.inverse(z), x, atol=1e-4)
    assert not torch.allclose(z.reshape(x.shape[0], -1), x.reshape(x.shape[0], -1), atol=1e-2)


@pytest.mark.parametrize("name", NAMES)
def test_loss_gives_finite_gradients_to_every_trainable_parameter(name):
    flow, x = EVERY_FLOW[name].build(), _points(name, 4, 2)
    loss, _ = flow.loss(x)
    loss.backward()
    for pname, p in flow.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    assert any(float(p.grad.abs().sum()) > 0 for p in flow.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", NAMES)
def test_sampling_gives_finite_points_of_the_data_shape(name):
    flow = EVERY_FLOW[name].build()
    with torch.no_grad():
        s = flow.sample(6, generator=torch.Generator().manual_seed(3))
    assert s.shape == (6, *EVERY_FLOW[name].event_shape) and torch.isfinite(s).all()
    assert float(s.std()) > 0


@pytest.mark.parametrize("name", NAMES)
def test_a_saved_flow_loads_into_a_fresh_one_with_the_same_density(name):
    flow, x = EVERY_FLOW[name].build(), _points(name, 2, 4)
    with torch.no_grad():
        for p in flow.parameters():  # away from the builder's weights, so loading must change them
            p.mul_(0.9)
        before = flow.log_prob(x)
    buffer = io.BytesIO()
    torch.save(flow.state_dict(), buffer)
    buffer.seek(0)
    fresh = EVERY_FLOW[name].build()
    with torch.no_grad():
        assert not torch.allclose(fresh.log_prob(x), before)
        fresh.load_state_dict(torch.load(buffer, weights_only=True))
        assert torch.allclose(fresh.log_prob(x), before, atol=1e-12)
