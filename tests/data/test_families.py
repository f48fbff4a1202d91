import pytest
import torch

from odeflow.data import family_trajectories, parameter_grid, sample_parameters
from odeflow.data.families import get_family
from odeflow.models import finite_difference_velocities


@pytest.mark.parametrize("family", ["van-der-pol", "damped-oscillator"])
def test_trajectories_follow_the_family_field(family):
    params = sample_parameters(family, 3, seed=2)
    fam = get_family(family)
    for (lo, hi), col in zip(fam.ranges, params.T):
        assert ((col >= lo) & (col <= hi)).all()
    t = torch.linspace(0, 1, 201, dtype=torch.float64)
    z = family_trajectories(family, params, 4, t, dtype=torch.float64)
    assert z.shape == (201, 3, 4, 2)
    mid, v = finite_difference_velocities(t, z)
    per_row = params.repeat_interleave(4, dim=0).repeat(200, 1)  # time-major rows, 12 trajectories per time
    expected = fam.field(per_row, mid.reshape(-1, 2)).reshape(200, 3, 4, 2)
    assert (v - expected).abs().max() < 1e-3


def test_damped_oscillator_loses_energy():
    params = parameter_grid("damped-oscillator", [[1.0, 0.2]])
    t = torch.linspace(0, 10, 11, dtype=torch.float64)
    z = family_trajectories("damped-oscillator", params, 3, t, dtype=torch.float64)[:, 0]
    energy = 0.5 * (z[..., 0] ** 2 + z[..., 1] ** 2)
    assert (energy[1:] < energy[:-1]).all()


def test_bad_parameters():
    with pytest.raises(ValueError, match=r"takes 2 parameter\(s\) \(omega, zeta\)"):
        parameter_grid("damped-oscillator", [[1.0]])
    with pytest.raises(ValueError, match="valid: damped-oscillator, van-der-pol"):
        sample_parameters("lorenz", 2)
