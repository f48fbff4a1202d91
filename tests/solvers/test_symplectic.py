import math

import pytest
import torch

from odeflow import Adaptive, FixedStep, solve
from odeflow.solvers.symplectic import leapfrog


def energy(q, p):
    return 0.5 * p**2 + 1 - torch.cos(q)


def pendulum(t, z):
    return torch.stack([z[..., 1], -torch.sin(z[..., 0])], dim=-1)


@pytest.mark.parametrize("h", [0.1, 0.05])
def test_energy_error_bounded_over_10000_steps(h):
    q0, p0 = torch.tensor([1.5], dtype=torch.float64), torch.tensor([0.0], dtype=torch.float64)
    t = torch.linspace(0, 10000 * h, 101, dtype=torch.float64)
    qs, ps = leapfrog(lambda p: p, torch.sin, q0, p0, t, FixedStep(h))
    err = (energy(qs, ps) - energy(q0, p0)).abs()
    assert err.max() < 0.5 * h**2  # O(h²) and no drift: the last tenth is no worse than the first
    assert err[-10:].max() < 1.5 * err[:11].max()


def test_explicit_rk_of_same_order_drifts_where_leapfrog_does_not():
    h = 0.1
    z0 = torch.tensor([1.5, 0.0], dtype=torch.float64)
    t = torch.linspace(0, 1000, 11, dtype=torch.float64)
    zs = solve(pendulum, z0, t, method="midpoint", step=FixedStep(h)).ys  # 2nd order, not symplectic
    qs, ps = leapfrog(lambda p: p, torch.sin, z0[:1], z0[1:], t, FixedStep(h))
    rk_err = (energy(zs[:, 0], zs[:, 1]) - energy(z0[0], z0[1])).abs()
    lf_err = (energy(qs, ps) - energy(z0[0], z0[1])).abs().squeeze(-1)
    assert rk_err[-1] > 5 * rk_err[1]  # grows with time
    assert rk_err[-1] > 10 * lf_err.max()


def test_second_order_against_dopri5():
    z0 = torch.tensor([1.0, 0.3], dtype=torch.float64)
    t = torch.tensor([0.0, 0.7, 1.3, 3.0], dtype=torch.float64)
    ref = solve(pendulum, z0, t, method="dopri5", step=Adaptive(rtol=1e-11, atol=1e-13)).ys
    errs = []
    for h in (0.02, 0.01):
        qs, ps = leapfrog(lambda p: p, torch.sin, z0[:1], z0[1:], t, FixedStep(h))
        errs.append((torch.cat([qs, ps], -1) - ref).abs().max())
    assert math.log2(errs[0] / errs[1]) == pytest.approx(2.0, abs=0.1)


def test_time_reversible():
    q0, p0 = torch.tensor([0.4]), torch.tensor([0.9])
    qs, ps = leapfrog(lambda p: p, torch.sin, q0.double(), p0.double(), [0.0, 5.0], FixedStep(0.1))
    qb, pb = leapfrog(lambda p: p, torch.sin, qs[-1], ps[-1], [5.0, 0.0], FixedStep(0.1))
    assert torch.allclose(qb[-1], q0.double(), atol=1e-12) and torch.allclose(pb[-1], p0.double(), atol=1e-12)


@pytest.mark.parametrize(
    "kwargs,err",
    [
        (dict(step=Adaptive()), TypeError),
        (dict(t=[0.0, 1.0, 0.5]), ValueError),
        (dict(p0=torch.zeros(2)), ValueError),
    ],
)
def test_bad_inputs(kwargs, err):
    args = dict(q0=torch.zeros(1), p0=torch.zeros(1), t=[0.0, 1.0], step=FixedStep(0.1))
    args.update(kwargs)
    with pytest.raises(err):
        leapfrog(lambda p: p, torch.sin, **args)
