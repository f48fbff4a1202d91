import pytest
import torch
from torch import nn

from odeflow import Adaptive, FixedStep
from odeflow.models import HamiltonianNN, SeparableHamiltonianNN


class PendulumEnergy(nn.Module):
    """Known H = p²/2 + (1 − cos q)."""

    def forward(self, z):
        return 0.5 * z[..., 1] ** 2 + 1 - torch.cos(z[..., 0])


class Kinetic(nn.Module):
    def forward(self, p):
        return 0.5 * (p**2).sum(-1)


class Potential(nn.Module):
    def forward(self, q):
        return (1 - torch.cos(q)).sum(-1)


def jacobian_trace(f, z):
    jac = torch.autograd.functional.jacobian(lambda x: f(torch.zeros(()), x).sum(0), z)  # [d, batch, d]
    return torch.einsum("ibi->b", jac)


@pytest.mark.parametrize("dof", [1, 3])
def test_learned_field_is_divergence_free(dof):
    torch.manual_seed(1)
    model = HamiltonianNN(dof, hidden=(16, 16)).double()
    z = torch.randn(5, 2 * dof, dtype=torch.float64)
    trace = jacobian_trace(model, z)
    assert trace.abs().max() < 1e-12
    # the field is not trivially zero
    assert model(torch.zeros(()), z).abs().max() > 1e-3


def test_field_is_symplectic_gradient_of_known_h():
    model = HamiltonianNN(1, energy=PendulumEnergy())
    z = torch.tensor([[0.3, -0.7], [1.0, 0.2]], dtype=torch.float64)
    f = model(torch.zeros(()), z)
    expected = torch.stack([z[:, 1], -torch.sin(z[:, 0])], dim=-1)
    assert torch.allclose(f, expected, atol=1e-15)


@pytest.mark.parametrize("rtol", [1e-6, 1e-9])
def test_known_h_conserved_up_to_solver_error(rtol):
    model = HamiltonianNN(1, energy=PendulumEnergy())
    z0 = torch.tensor([[1.0, 0.0], [0.2, 0.5]], dtype=torch.float64)
    t = torch.linspace(0, 10, 11, dtype=torch.float64)
    with torch.no_grad():
        zs = model.rollout(z0, t, step=Adaptive(rtol=rtol, atol=rtol * 1e-2))
    drift = (model.hamiltonian(zs) - model.hamiltonian(z0)).abs().max()
    assert drift < 50 * rtol


def test_leapfrog_rollout_of_the_model_keeps_energy_bounded():
    model = SeparableHamiltonianNN(1, kinetic=Kinetic(), potential=Potential())
    z0 = torch.tensor([[1.5, 0.0]], dtype=torch.float64)
    t = torch.linspace(0, 100, 11, dtype=torch.float64)
    with torch.no_grad():
        zs = model.rollout(z0, t, method="leapfrog", step=FixedStep(0.2))
        zs_rk = model.rollout(z0, t, method="euler", step=FixedStep(0.2))
    e0 = model.hamiltonian(z0)
    assert (model.hamiltonian(zs) - e0).abs().max() < 0.5 * 0.2**2
    assert (model.hamiltonian(zs_rk[-1]) - e0).abs().max() > 1.0


def test_separable_network_trains_through_leapfrog_and_rk():
    torch.manual_seed(0)
    model = SeparableHamiltonianNN(1, hidden=(8,))
    z0 = torch.randn(4, 2)
    t = torch.linspace(0, 1, 5)
    for method in ("leapfrog", "rk4"):
        model.zero_grad()
        model.rollout(z0, t, method=method, step=FixedStep(0.1)).pow(2).mean().backward()
        # every weight gets a gradient (the output biases shift H by a constant: no effect on the field)
        grads = [p.grad for name, p in model.named_parameters() if name.endswith("weight")]
        assert all(g is not None for g in grads) and all(g.abs().sum() > 0 for g in grads)


def test_bad_inputs():
    with pytest.raises(ValueError, match="2\\*dof = 2"):
        HamiltonianNN(1)(torch.zeros(()), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="unknown activation 'relu'"):
        HamiltonianNN(1, activation="relu")
    with pytest.raises(ValueError, match="needs step=FixedStep"):
        SeparableHamiltonianNN(1).rollout(torch.zeros(1, 2), torch.linspace(0, 1, 3))
