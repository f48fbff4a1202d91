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


def _random_separable(seed: int, dof: int):
    """A random separable H = p^T M p / 2 + sum_i a_i (1 - cos(w_i . q)): its field on [q, p] and
    the two gradients, for an independent kick-drift-kick loop."""
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(dof, dof, generator=g, dtype=torch.float64)
    mass = m @ m.T / dof + torch.eye(dof, dtype=torch.float64)
    w = torch.randn(3, dof, generator=g, dtype=torch.float64)
    a = torch.rand(3, generator=g, dtype=torch.float64) + 0.5
    dT = lambda p: p @ mass  # noqa: E731
    dV = lambda q: (a * torch.sin(q @ w.T)) @ w  # noqa: E731

    def field(t, z):
        return torch.cat([dT(z[..., dof:]), -dV(z[..., :dof])], dim=-1)

    return field, dT, dV


def _kick_drift_kick(dT, dV, q, p, h: float, n: int):
    for _ in range(n):
        p = p - 0.5 * h * dV(q)
        q = q + h * dT(p)
        p = p - 0.5 * h * dV(q)
    return q, p


@pytest.mark.parametrize("seed", range(3))
def test_leapfrog_is_a_method_of_solve(seed):
    """solve(method='leapfrog') on a random separable system, batched [B, 2 dof] and as a tuple
    (q, p): the independent kick-drift-kick loop within rounding, two evaluations per step."""
    dof, h, n = 1 + seed, 0.05, 40
    field, dT, dV = _random_separable(seed, dof)
    z0 = torch.randn(4, 2 * dof, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    t = torch.tensor([0.0, n * h], dtype=torch.float64)
    sol = solve(field, z0, t, method="leapfrog", step=FixedStep(h))
    q, p = _kick_drift_kick(dT, dV, z0[:, :dof], z0[:, dof:], h, n)
    assert torch.allclose(sol.ys[-1], torch.cat([q, p], -1), rtol=0, atol=1e-12)
    assert sol.stats.nfe == 2 * n + 1  # the end kick is the next step's first
    pair = solve(lambda t, s: tuple(field(t, torch.cat(s, -1)).split(dof, -1)), tuple(z0.split(dof, -1)), t,
                 method="leapfrog", step=FixedStep(h)).ys  # fmt: skip
    assert torch.allclose(torch.cat([pair[0][-1], pair[1][-1]], -1), sol.ys[-1], rtol=0, atol=1e-12)


def test_leapfrog_outputs_gradients_and_events():
    """Between grid points the output is cubic Hermite (second order overall); backprop through
    the steps matches central differences; a terminal event is located to O(h^2)."""
    z0 = torch.tensor([1.0, 0.3], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 0.55, 1.3], dtype=torch.float64)
    ref = solve(pendulum, z0.detach(), t, method="dopri5", step=Adaptive(rtol=1e-11, atol=1e-13)).ys
    errs = [
        (solve(pendulum, z0.detach(), t, method="leapfrog", step=FixedStep(grid=torch.arange(0, 1.4, h).tolist() + [1.4]))
         .ys - ref).abs().max()
        for h in (0.02, 0.01)
    ]  # fmt: skip
    assert errs[0] / errs[1] > 3.0  # at least second order (Hermite outputs are locally fourth)
    loss = lambda z: solve(pendulum, z, t, method="leapfrog", step=FixedStep(0.05)).ys[-1].square().sum()  # noqa: E731
    (grad,) = torch.autograd.grad(loss(z0), z0)
    eps = 1e-6
    fd = [(loss(z0.detach() + eps * e) - loss(z0.detach() - eps * e)) / (2 * eps) for e in torch.eye(2).double()]
    assert torch.allclose(grad, torch.stack(fd), atol=1e-7)
    from odeflow import Event

    hit = lambda t, z: z[..., 0]  # noqa: E731  (q crosses 0)
    ref_t = solve(pendulum, z0.detach(), torch.tensor([0.0, 3.0], dtype=torch.float64), method="dopri5",
                  step=Adaptive(rtol=1e-11, atol=1e-13), events=Event(hit)).event_t  # fmt: skip
    gaps = [
        abs(float(solve(pendulum, z0.detach(), torch.tensor([0.0, 3.0], dtype=torch.float64), method="leapfrog",
                        step=FixedStep(h), events=Event(hit)).event_t - ref_t))
        for h in (0.02, 0.01)
    ]  # fmt: skip
    assert gaps[1] < 1e-3 and gaps[0] / gaps[1] > 2.5


def test_leapfrog_refusals():
    z0, t = torch.tensor([1.0, 0.0]), torch.linspace(0, 1, 3)
    with pytest.raises(ValueError, match="cannot take adaptive steps"):
        solve(pendulum, z0, t, method="leapfrog", step=Adaptive())
    with pytest.raises(ValueError, match="continuous adjoint"):
        from odeflow import OptimizeDiscretize

        solve(pendulum, z0, t, method="leapfrog", step=FixedStep(0.1), gradient=OptimizeDiscretize(params=()))
    with pytest.raises(ValueError, match="two equal halves"):
        solve(lambda t, z: z, torch.zeros(3), t, method="leapfrog", step=FixedStep(0.1))
