"""Task `sde`: a neural SDE dh = f dt + g dW (odeflow ODENets, solved by torchsde) fitted to
stochastic paths; the result is a mean with an uncertainty band (seed 002, "Extensions").

Each iteration samples ``batch`` model paths from the data's initial state (Brownian motion
seeded by the iteration, so resumed runs draw the same) and minimises the Gaussian NLL of the
training paths under the model's per-time mean and variance (NeuralSDE.marginal_nll).
Validation: the NLL of held-out paths. At the end: mean and std of 2,000 model paths against the
data's (and against the exact moments for Ornstein–Uhlenbeck); figure bands.png.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import torch

from ..data.stochastic import ou_moments, sde_paths
from ..models import NeuralSDE
from ..models.sde import import_torchsde
from ..training import RunContext, StepOutput, Task
from ..training.data import iteration_seed
from .dynamics_figures import sde_bands
from .sde_config import SDEConfig


class SDETask(Task):
    model: NeuralSDE  # set by setup
    name = "sde"
    monitor = "val_nll"
    config: SDEConfig

    def setup(self, ctx: RunContext) -> None:
        import_torchsde()  # fail early with the install hint
        cfg = self.config
        self.t = torch.linspace(0, cfg.horizon, cfg.points).to(ctx.device)
        self.data = sde_paths(cfg.system, cfg.n_paths, self.t.cpu(), seed=cfg.seed).to(ctx.device)
        self.val = sde_paths(cfg.system, cfg.n_paths, self.t.cpu(), seed=1000 + cfg.seed).to(ctx.device)
        self.model = NeuralSDE(self.data.shape[-1], cfg.hidden, cfg.activation).to(ctx.device)
        self.per_rank = cfg.batch // ctx.dist.world_size
        self.rank = ctx.dist.rank

    def _paths(self, n: int, seed: int):
        y0 = self.data[0, :1].expand(n, -1).contiguous()
        return self.model.sample(
            y0, self.t, dt=self.config.dt, method=self.config.method, adjoint=self.config.adjoint, generator_seed=seed
        )

    def batch(self, iteration: int, ctx: RunContext) -> int:
        return iteration_seed(self.config.seed, iteration) * 1009 + ctx.dist.rank

    def training_loss(self, seed: int) -> StepOutput:
        loss = NeuralSDE.marginal_nll(self._paths(self.per_rank, seed), self.data)
        return StepOutput(loss, dict(loss=loss.detach()))

    def validate(self, ctx: RunContext) -> Dict[str, float]:
        with torch.no_grad():
            nll = NeuralSDE.marginal_nll(self._paths(self.per_rank, 7 + ctx.dist.rank), self.val)
        return dict(val_nll=float(ctx.dist.mean(nll)))

    def finish(self, ctx: RunContext) -> Dict[str, Any]:
        cfg = self.config
        with torch.no_grad():
            paths = self._paths(2000, 11)
        m, s = paths[..., 0].mean(dim=1).double().cpu(), paths[..., 0].std(dim=1).double().cpu()
        dm, ds = self.data[..., 0].mean(dim=1).double().cpu(), self.data[..., 0].std(dim=1).double().cpu()
        out = dict(
            test_mean_error_vs_data=float((m - dm).abs().max()),
            test_std_error_vs_data=float((s - ds).abs().max()),
            test_final_std=float(s[-1]),
        )
        if cfg.system == "ornstein-uhlenbeck":
            em, es = ou_moments(self.t.cpu())
            out.update(
                test_mean_error_vs_exact=float((m - em).abs().max()),
                test_std_error_vs_exact=float((s - es).abs().max()),
            )
        if ctx.folder is not None:
            sde_bands(self.t.cpu(), self.data.cpu(), paths.cpu(), Path(ctx.folder.path) / "bands.png")
        return out

    def describe(self, summary: Dict[str, Any]) -> str:
        return (
            f"{self.config.system}: "
            f"val_nll {summary.get('val_nll', float('nan')):.3g}; max |mean error| {summary['test_mean_error_vs_data']:.3g}, "
            f"max |std error| {summary['test_std_error_vs_data']:.3g} (vs the data's moments)"
        )
