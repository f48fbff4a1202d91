import numpy as np
import pytest
import torch

from odeflow.data.discovery_families import random_instance
from odeflow.discover.neural_fit import (
    NeuralFitConfig,
    _windows,
    auto_substeps,
    check_observations,
    fit_neural_ode,
    rk4_flow,
)


def _two_trajectories(n=30):
    inst = random_instance("lotka-volterra", 41)
    t1, x1, _ = inst.observe(n, 0.01, 1)
    inst2 = random_instance("lotka-volterra", 41)
    object.__setattr__(inst2, "z0", tuple(0.8 * v for v in inst.z0))
    t2, x2, _ = inst2.observe(n, 0.01, 2)
    traj = torch.cat([torch.zeros(len(t1), dtype=torch.long), torch.ones(len(t2), dtype=torch.long)])
    return inst, torch.cat([t1, t2]), torch.cat([x1, x2]), traj


def test_windows_never_cross_trajectories():
    t = torch.tensor([0.0, 1.0, 2.0, 0.0, 0.5, 1.0, 1.5])
    traj = torch.tensor([0, 0, 0, 1, 1, 1, 1])
    starts, dts, valid = _windows(t, traj, 3)
    assert starts.tolist() == [0, 1, 3, 4, 5]  # no window starts at a trajectory's last row
    for s, i in zip(*valid.nonzero(as_tuple=True)):
        assert traj[starts[i] + s + 1] == traj[starts[i]]
    assert not valid[1, 1] and valid[1, 2] and dts[1, 1, 0] == 0  # 1 -> 3 would cross into trajectory 1


def test_rk4_flow_matches_exponential():
    z = torch.tensor([[1.0], [2.0]], dtype=torch.float64)
    dt = torch.tensor([[0.5], [1.0]], dtype=torch.float64)
    out = rk4_flow(lambda t, y: -y, z, dt, 20)
    assert torch.allclose(out, z * torch.exp(-dt), rtol=1e-7)


def test_auto_substeps_grows_with_the_jump_per_interval():
    t = torch.linspace(0, 10, 50, dtype=torch.float64)
    slow = torch.sin(0.2 * t).unsqueeze(-1)
    fast = torch.sin(3.0 * t).unsqueeze(-1)
    zero = torch.zeros(50, dtype=torch.long)
    assert auto_substeps(t, slow, zero, slow.std(0)) == 1
    assert auto_substeps(t, fast, zero, fast.std(0)) > 1


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(x=torch.full((6, 2), float("nan"))), "NaN"),
        (dict(t=torch.tensor([0.0, 1.0, 1.0, 2.0, 3.0, 4.0])), "strictly increasing within each trajectory"),
        (dict(x=torch.zeros(6)), r"x \[n, d\]"),
        (dict(t=torch.arange(3.0), x=torch.rand(3, 2)), "at least 4"),
        (dict(x=torch.stack([torch.rand(6), torch.full((6,), 2.0)], -1)), r"\[1\] are constant"),
        (
            dict(t=torch.arange(10.0), x=torch.rand(10, 2), trajectory=torch.tensor([0] * 4 + [1] * 4 + [0] * 2)),
            "not contiguous",
        ),
        (dict(trajectory=torch.tensor([0, 0, 0, 0, 0, 1])), "trajectory 1 has 1 observations"),
    ],
)
def test_bad_inputs(kwargs, match):
    args = dict(t=torch.arange(6.0), x=torch.rand(6, 2), trajectory=None)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        check_observations(args["t"], args["x"], args["trajectory"])
    with pytest.raises(ValueError, match=match):
        fit_neural_ode(args["t"], args["x"], NeuralFitConfig(iterations=1), trajectory=args["trajectory"])


def test_stops_on_validation_plateau_and_keeps_the_best_checkpoint():
    _, t, x, traj = _two_trajectories(25)
    # a rate so small that the second check cannot improve by 0.1%: one cut would go below min_lr -> stop
    cfg = NeuralFitConfig(iterations=400, hidden=(8,), check_every=2, patience=1, lr=1e-6, min_lr=5e-7)
    fit = fit_neural_ode(t, x, cfg, trajectory=traj)
    assert fit.stopped_early and fit.iterations < 400
    assert len(fit.val_losses) == fit.iterations // 2
    # the kept checkpoint is the last one that improved by more than 0.1%
    assert fit.best_val in fit.val_losses and fit.best_val <= min(fit.val_losses) * (1 + 1e-3)
    assert fit.final_loss == fit.losses[fit.best_iteration]
    # both trajectories kept apart: held-out rows removed, the rest in order
    assert fit.states.shape[0] == fit.t_train.shape[0] < t.shape[0]
    assert set(fit.trajectory_train.tolist()) == {0, 1}


def test_samples_follow_every_trajectory_with_field_derivatives():
    _, t, x, traj = _two_trajectories(20)
    fit = fit_neural_ode(t, x, NeuralFitConfig(iterations=3, hidden=(8,)), trajectory=traj)
    ts, xs, xd, groups, tr = fit.samples(200, nearby=2, spread=0.05)
    assert xs.shape == xd.shape and xs.shape[0] >= 3 * 200 and xs.shape[1] == 2
    with torch.no_grad():
        assert np.allclose(xd, fit.field(None, torch.tensor(xs)).numpy())
    assert set(tr.tolist()) == {0, 1}
    # groups: 5 time windows per trajectory, never shared between trajectories
    assert set(groups[tr == 0].tolist()) <= set(range(5)) and set(groups[tr == 1].tolist()) <= set(range(5, 10))
    for k in (0, 1):
        on = traj == k
        assert ts[tr == k].min() >= t[on].min().item() - 1e-12 and ts[tr == k].max() <= t[on].max().item()


def test_typical_rates_follow_the_time_unit_and_ignore_close_noisy_neighbours():
    from odeflow.discover.neural_fit import typical_rates

    gen = torch.Generator().manual_seed(0)
    t = torch.sort(torch.rand(300, generator=gen, dtype=torch.float64)).values * 20
    x = torch.stack([torch.sin(2.0 * t), 3 * torch.cos(0.5 * t)], -1)
    x = x + 0.01 * x.std(0) * torch.randn(x.shape, generator=gen, dtype=torch.float64)
    traj = torch.zeros(300, dtype=torch.long)
    r = typical_rates(t, x, traj, x.std(0))
    # x = A sin(ωt): median |ẋ| / std = ω (median |cos| = 1/√2, std = A/√2)
    assert torch.allclose(r, torch.tensor([2.0, 0.5], dtype=torch.float64), rtol=0.15)
    assert torch.allclose(typical_rates(t * 10, x, traj, x.std(0)), r / 10, rtol=1e-12)


def test_standardized_states_start_at_the_observations_and_fit():
    gen = torch.Generator().manual_seed(1)
    t = torch.sort(torch.rand(30, generator=gen, dtype=torch.float64)).values * 6
    x = torch.stack([100 + 50 * torch.sin(t), 0.01 * torch.cos(t)], -1)
    cfg = dict(hidden=(8,), validation=0.0, seed=0)
    still = fit_neural_ode(t, x, NeuralFitConfig(iterations=1, lr=1e-12, standardized_states=True, **cfg))
    assert torch.allclose(still.states, x, rtol=1e-9, atol=1e-12)
    fit = fit_neural_ode(t, x, NeuralFitConfig(iterations=60, standardized_states=True, **cfg))
    assert fit.losses[-1] < 0.5 * fit.losses[0]
