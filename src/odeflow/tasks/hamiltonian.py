"""Task `hamiltonian`: a Hamiltonian NN (or a plain neural ODE) learns a pendulum / mass-spring
from trajectories; long rollouts measure energy drift (Greydanus et al. 2019; seed 002).

Training objective (as in the HNN paper): squared error of the field against finite-difference
velocities at step midpoints of the training trajectories, minibatches of points.
Validation: the same on held-out trajectories. At the end: rollouts from new initial states to
``rollout_factor`` × the training horizon, |H(z(t)) − H(z0)| of the true energy, state error
at the horizon; figures energy.png and phase_portrait.png.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

import torch
from torch import Tensor

from ..data.hamiltonian_systems import get_hamiltonian_system, hamiltonian_trajectories
from ..models import HamiltonianNN, SeparableHamiltonianNN, VectorFieldMLP, finite_difference_velocities
from ..solve import solve
from ..solvers.stepping import Adaptive, FixedStep
from ..training import RunContext, StepOutput, Task
from ..training.data import EpochBatches
from .dynamics_figures import energy_over_time, phase_portraits
from .hamiltonian_config import HamiltonianConfig
from .run import train


def build_model(cfg: HamiltonianConfig) -> torch.nn.Module:
    if cfg.model == "node":
        return VectorFieldMLP(2, cfg.hidden, cfg.activation, transform="identity", dtype=torch.float64)
    cls = SeparableHamiltonianNN if cfg.model == "hnn-separable" else HamiltonianNN
    return cls(1, cfg.hidden, cfg.activation).double()


def rollout(model: Any, z0: Tensor, t: Tensor, integrator: str, h: float) -> Tensor:
    with torch.no_grad():
        if integrator == "leapfrog":
            return model.rollout(z0, t, method="leapfrog", step=FixedStep(h))
        step = FixedStep(h) if integrator == "rk4" else Adaptive(rtol=1e-7, atol=1e-9)
        return solve(model, z0, t, method=integrator, step=step).ys


class HamiltonianTask(Task):
    name = "hamiltonian"
    monitor = "val_loss"
    config: HamiltonianConfig

    def _points(self, n: int, seed: int, device: torch.device):
        cfg = self.config
        t = torch.linspace(0, cfg.horizon, cfg.points, dtype=torch.float64)
        z, _ = hamiltonian_trajectories(cfg.system, n, t, noise=cfg.noise, seed=seed, dtype=torch.float64)
        mid, v = finite_difference_velocities(t, z)
        return mid.reshape(-1, 2).to(device), v.reshape(-1, 2).to(device)

    def setup(self, ctx: RunContext) -> None:
        cfg = self.config
        self.model = build_model(cfg).to(ctx.device)
        self.z, self.v = self._points(cfg.n_train, cfg.seed, ctx.device)
        self.z_val, self.v_val = self._points(cfg.n_val, 1000 + cfg.seed, ctx.device)
        self.batches = EpochBatches(self.z.shape[0], cfg.batch, cfg.seed, ctx.dist)
        self.t0 = torch.zeros((), dtype=torch.float64, device=ctx.device)

    def batch(self, iteration: int, ctx: RunContext):
        idx = self.batches.indices(iteration).to(self.z.device)
        return self.z[idx], self.v[idx]

    def training_loss(self, batch) -> StepOutput:
        z, v = batch
        loss = (self.model(self.t0, z) - v).pow(2).mean()
        return StepOutput(loss, dict(loss=loss.detach()))

    def validate(self, ctx: RunContext) -> Dict[str, float]:
        z = self.z_val[ctx.dist.rank :: ctx.dist.world_size]
        v = self.v_val[ctx.dist.rank :: ctx.dist.world_size]
        err = (self.model(self.t0, z).detach() - v).pow(2).mean(dim=-1)
        return dict(val_loss=ctx.dist.sample_mean(err))

    def finish(self, ctx: RunContext) -> Dict[str, Any]:
        cfg = self.config
        energy = get_hamiltonian_system(cfg.system).energy
        t_end = cfg.horizon * cfg.rollout_factor
        t_long = torch.linspace(0, t_end, min(1001, int(t_end / cfg.step_size) + 1), dtype=torch.float64)
        _, ref = hamiltonian_trajectories(cfg.system, cfg.n_test, t_long, seed=2000 + cfg.seed, dtype=torch.float64)
        ref = ref.to(ctx.device)
        integrator = cfg.rollout_integrator()
        zs = rollout(self.model, ref[0], t_long.to(ctx.device), integrator, cfg.step_size)
        drift = (energy(zs) - energy(ref[0])).abs()
        i_h = int((t_long <= cfg.horizon + 1e-9).sum()) - 1
        out = dict(
            test_integrator=integrator,
            test_drift_horizon=float(drift[i_h].mean()),
            test_drift_end=float(drift[-1].mean()),
            test_drift_max=float(drift.max()),
            test_state_error_horizon=float((zs[i_h] - ref[i_h]).norm(dim=-1).mean()),
            test_rollout_time=float(t_long[-1]),
        )
        if ctx.folder is not None:
            path: Path = ctx.folder.path
            energy_over_time(
                t_long, {f"{cfg.model} ({integrator})": drift.mean(dim=1).cpu()}, path / "energy.png", cfg.horizon
            )
            j = max(2, int((t_long <= 5 * cfg.horizon).sum()))
            phase_portraits(
                {"truth": ref[:j].cpu(), cfg.model: zs[:j].cpu()},
                path / "phase_portrait.png",
                f"{cfg.system}, t in [0, {5 * cfg.horizon:g}]",
            )
        return out

    def describe(self, summary: Dict[str, Any]) -> str:
        return (
            f"{self.config.model} on {self.config.system}: "
            f"val_loss {summary.get('val_loss', float('nan')):.3g}; energy drift |dH| at t={self.config.horizon:g}: "
            f"{summary['test_drift_horizon']:.3g}, at t={summary['test_rollout_time']:g}: {summary['test_drift_end']:.3g} "
            f"(max {summary['test_drift_max']:.3g}, {summary['test_integrator']})"
        )


def train_hamiltonian(
    cfg: HamiltonianConfig, out: Optional[Path], progress: bool = True, resume: bool = False, tensorboard: bool = False
) -> Dict[str, Any]:
    return train("hamiltonian", cfg, out, progress, resume, tensorboard)
