"""Task `function-encoder`: K basis neural ODEs trained jointly on a family of systems; zero-shot
prediction for new parameter values from demonstrations (seed 002 eq. 35).

Each iteration takes a batch of training systems; per system, α comes by least squares from the
finite-difference velocities of half its trajectories, and the loss is the velocity error of
Σ α_i f_i on the other half plus gram_weight · mean((G − I)²) (an orthonormal basis makes eq. 35's
inner products equal least squares). Validation: the same on unseen systems. At the end, for each
test parameter: α from ``demos`` demonstration trajectories (least squares and eq. 35), rollouts
of ``eval_trajectories`` new trajectories with dz/dt = Σ α_i f_i, mean squared error against the
truth; figures alphas.png and phase_portraits.png.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
from torch import Tensor

from ..data.families import family_trajectories, get_family, parameter_grid, sample_parameters
from ..models import FunctionEncoderODE, finite_difference_velocities
from ..solvers.stepping import Adaptive
from ..training import RunContext, StepOutput, Task
from ..training.data import EpochBatches
from .dynamics_figures import alpha_bars, phase_portraits
from .function_encoder_config import FunctionEncoderConfig
from .run import train


def system_velocities(t: Tensor, z: Tensor):
    """z [T, m, n, d] -> (midpoints, velocities) [m, n·(T−1), d]."""
    mid, v = finite_difference_velocities(t, z)
    m, d = z.shape[1], z.shape[-1]
    return mid.permute(1, 2, 0, 3).reshape(m, -1, d), v.permute(1, 2, 0, 3).reshape(m, -1, d)


class FunctionEncoderTask(Task):
    model: FunctionEncoderODE  # set by setup
    name = "function-encoder"
    monitor = "val_loss"
    config: FunctionEncoderConfig

    def _split(self, params: Tensor, seed: int, device: torch.device):
        cfg = self.config
        z = family_trajectories(cfg.family, params, cfg.trajectories, self.t, seed=seed, dtype=torch.float64)
        half = cfg.trajectories // 2
        zd, vd = system_velocities(self.t, z[:, :, :half])
        zq, vq = system_velocities(self.t, z[:, :, half:])
        return zd.to(device), vd.to(device), zq.to(device), vq.to(device)

    def setup(self, ctx: RunContext) -> None:
        cfg = self.config
        self.t = torch.linspace(0, cfg.horizon, cfg.points, dtype=torch.float64)
        self.model = FunctionEncoderODE(2, cfg.n_basis, cfg.hidden, cfg.activation).double().to(ctx.device)
        self.train = self._split(sample_parameters(cfg.family, cfg.n_systems, seed=cfg.seed), cfg.seed, ctx.device)
        self.val = self._split(sample_parameters(cfg.family, 4, seed=1000 + cfg.seed), 1000 + cfg.seed, ctx.device)
        self.batches = EpochBatches(cfg.n_systems, cfg.batch, cfg.seed, ctx.dist)

    def batch(self, iteration: int, ctx: RunContext):
        idx = self.batches.indices(iteration).to(self.train[0].device)
        return tuple(x[idx] for x in self.train)

    def _losses(self, zd: Tensor, vd: Tensor, zq: Tensor, vq: Tensor):
        gram, b = self.model.inner_products(zd, vd)
        eye = torch.eye(self.model.n_basis, dtype=gram.dtype, device=gram.device)
        alpha = torch.linalg.solve(gram + 1e-6 * eye, b.unsqueeze(-1)).squeeze(-1)
        pred = torch.einsum("kmpd,mk->mpd", self.model.basis_fields(zq), alpha)
        return (pred - vq).pow(2).mean(), (gram - eye).pow(2).mean()

    def training_loss(self, batch) -> StepOutput:
        fit, ortho = self._losses(*batch)
        loss = fit + self.config.gram_weight * ortho
        return StepOutput(loss, dict(loss=loss.detach(), velocity_mse=fit.detach(), gram_error=ortho.detach()))

    def validate(self, ctx: RunContext) -> Dict[str, float]:
        with torch.no_grad():
            fit, _ = self._losses(*self.val)
        return dict(val_loss=float(ctx.dist.mean(fit)))

    def finish(self, ctx: RunContext) -> Dict[str, Any]:
        cfg = self.config
        params = parameter_grid(cfg.family, cfg.test_parameters)
        z = family_trajectories(
            cfg.family, params, cfg.demos + cfg.eval_trajectories, self.t, seed=7 + cfg.seed, dtype=torch.float64
        ).to(ctx.device)
        t = self.t.to(ctx.device)
        out: Dict[str, Any] = {}
        errs: Dict[str, List[float]] = {"least_squares": [], "inner": []}
        alphas: Dict[str, List[float]] = {}
        curves: Dict[str, Tensor] = {}
        for j, p in enumerate(params.tolist()):
            zd, vd = system_velocities(self.t, z[:, j : j + 1, : cfg.demos].cpu())
            ev = z[:, j, cfg.demos :]
            label = ",".join(f"{v:g}" for v in p)
            with torch.no_grad():
                for method in errs:
                    alpha = self.model.coefficients(zd.to(ctx.device), vd.to(ctx.device), method=method)[0]
                    zs = self.model.predict(ev[0], t, alpha, method="dopri5", step=Adaptive(rtol=1e-6, atol=1e-8))
                    mse = float((zs - ev).pow(2).mean())
                    errs[method].append(mse)
                    out[f"test_mse_{method}_{label}"] = mse
                    if method == "least_squares":
                        alphas[label] = alpha.cpu().tolist()
                        if j == 0:
                            curves = {"truth": ev.cpu(), f"zero-shot ({label})": zs.cpu()}
        out["test_mse_least_squares"] = sum(errs["least_squares"]) / len(params)
        out["test_mse_inner"] = sum(errs["inner"]) / len(params)
        out["test_alphas"] = alphas
        if ctx.folder is not None:
            path: Path = ctx.folder.path
            alpha_bars(
                {f"{get_family(cfg.family).parameter_names} = {k}": v for k, v in alphas.items()}, path / "alphas.png"
            )
            phase_portraits(curves, path / "phase_portraits.png", f"{cfg.family}: held-out system, zero-shot")
        return out

    def describe(self, summary: Dict[str, Any]) -> str:
        return (
            f"{self.config.family}: "
            f"val_loss {summary.get('val_loss', float('nan')):.3g}; zero-shot rollout MSE on "
            f"{len(self.config.test_parameters)} held-out systems: least squares {summary['test_mse_least_squares']:.3g}, "
            f"eq. 35 inner products {summary['test_mse_inner']:.3g}"
        )


def train_function_encoder(
    cfg: FunctionEncoderConfig,
    out: Optional[Path],
    progress: bool = True,
    resume: bool = False,
    tensorboard: bool = False,
) -> Dict[str, Any]:
    return train("function-encoder", cfg, out, progress, resume, tensorboard)
