import pytest
import torch

from odeflow.data import HAMILTONIAN_SYSTEMS, hamiltonian_initial_states, hamiltonian_trajectories


@pytest.mark.parametrize("system", sorted(HAMILTONIAN_SYSTEMS))
def test_energy_in_range_and_conserved_along_trajectories(system):
    energy = HAMILTONIAN_SYSTEMS[system].energy
    z0 = hamiltonian_initial_states(system, 50, seed=3)
    lo, hi = HAMILTONIAN_SYSTEMS[system].energy_range
    e = energy(z0)
    assert ((e >= lo - 1e-12) & (e <= hi + 1e-12)).all()
    t = torch.linspace(0, 10, 21, dtype=torch.float64)
    _, clean = hamiltonian_trajectories(system, 5, t, dtype=torch.float64)
    assert (energy(clean) - energy(clean[0])).abs().max() < 1e-8


def test_noise_and_seed():
    t = torch.linspace(0, 1, 11)
    a, clean = hamiltonian_trajectories("pendulum", 200, t, noise=0.1, seed=1)
    b, _ = hamiltonian_trajectories("pendulum", 200, t, noise=0.1, seed=1)
    assert torch.equal(a, b) and a.shape == (11, 200, 2)
    assert (a - clean).std().item() == pytest.approx(0.1, rel=0.05)


def test_unknown_system():
    with pytest.raises(ValueError, match="valid: mass-spring, pendulum"):
        hamiltonian_initial_states("double-pendulum", 3)
