"""Training a CNF on a toy 2-D density (FFJORD; seed 000 §4.2.1).

Each iteration: a fresh batch, loss = mean NLL (Hutchinson or exact trace), backward, Adam.
Every `val_every` iterations the test NLL is computed with the exact trace and the solver of
training; the best model is checkpointed. At the end the flow is evaluated again with a fine
solver (re-discretization) together with its inverse error mean ||f^-1(f(x)) - x||_2.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from ..data.toy2d import sample_toy
from ..flows import CNF
from ..flows.cnf import standard_normal_logprob
from ..nn import ODENet
from ..solvers.stepping import Adaptive, FixedStep
from .progress import Progress
from .run_folder import RunFolder


@dataclass
class CNFConfig:
    data: str = "8gaussians"
    hidden: List[int] = field(default_factory=lambda: [64, 64, 64])
    layer: str = "concatsquash"
    activation: str = "tanh"
    T: float = 0.5
    mode: str = "disc-opt"            # 'disc-opt' or 'opt-disc'
    method: str = "rk4"
    step_size: Optional[float] = 0.05  # None: adaptive with rtol/atol
    rtol: float = 1e-5
    atol: float = 1e-5
    divergence: str = "hutchinson"
    iterations: int = 1000
    batch: int = 512
    lr: float = 1e-3
    val_every: int = 100
    val_size: int = 2048
    seed: int = 0

    def step(self):
        return FixedStep(self.step_size) if self.step_size else Adaptive(self.rtol, self.atol)


def build_flow(cfg: CNFConfig) -> CNF:
    if cfg.mode not in ("disc-opt", "opt-disc"):
        raise ValueError(f"unknown mode {cfg.mode!r}; valid: disc-opt, opt-disc")
    torch.manual_seed(cfg.seed)
    net = ODENet(2, cfg.hidden, layer=cfg.layer, activation=cfg.activation)
    return CNF(net, 2, T=cfg.T, divergence=cfg.divergence, method=cfg.method, step=cfg.step(),
               adjoint=cfg.mode == "opt-disc")


def evaluate_flow(flow: CNF, x: torch.Tensor, method: str, step) -> Dict[str, float]:
    """Test NLL (exact trace), inverse error and NFE with the given solver; restores the flow's own."""
    saved = (flow.method, flow.step, flow.divergence)
    flow.set_solver(method, step)
    flow.divergence = "exact"
    try:
        with torch.no_grad():
            z, l = flow.transform(x)
            nfe = flow.last_stats.nfe
            nll = float(-(standard_normal_logprob(z) - l).mean())
            inv = float((flow.inverse(z) - x).norm(dim=1).mean())
    finally:
        flow.method, flow.step, flow.divergence = saved
    return dict(nll=nll, inverse_error=inv, nfe=nfe)


def train_cnf(cfg: CNFConfig, out: Path, progress: bool = True) -> Dict[str, Any]:
    flow = build_flow(cfg)
    folder = RunFolder(out)
    folder.write_config(asdict(cfg))
    opt = torch.optim.Adam(flow.parameters(), lr=cfg.lr)
    x_val = sample_toy(cfg.data, cfg.val_size, seed=10_000 + cfg.seed)
    bar = Progress(cfg.iterations, f"cnf {cfg.mode}", enabled=progress)
    best, elapsed = float("inf"), 0.0
    try:
        for it in range(cfg.iterations):
            x = sample_toy(cfg.data, cfg.batch, seed=cfg.seed * 1_000_003 + it)
            start = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss = -flow.log_prob(x).mean()
            loss.backward()
            opt.step()
            elapsed += time.perf_counter() - start
            stats = flow.last_stats
            row: Dict[str, Any] = dict(iteration=it, loss=float(loss.detach()), wall_time=elapsed,
                                       nfe_forward=stats.nfe, nfe_backward=stats.nfe_backward, val_nll="")
            if (it + 1) % cfg.val_every == 0 or it + 1 == cfg.iterations:
                val = evaluate_flow(flow, x_val, flow.method, flow.step)["nll"]
                row["val_nll"] = val
                if val < best:
                    best = val
                    folder.save_checkpoint(dict(model=flow.state_dict(), config=asdict(cfg), kind="cnf",
                                                iteration=it, val_nll=val), "best.pt")
            folder.log(row)
            bar.update(it, loss=row["loss"], nfe=stats.nfe + stats.nfe_backward)
    finally:
        bar.close()
        folder.close()
    folder.save_checkpoint(dict(model=flow.state_dict(), config=asdict(cfg), kind="cnf"), "last.pt")
    x_test = sample_toy(cfg.data, cfg.val_size, seed=20_000 + cfg.seed)
    summary = dict(ms_per_iter=1e3 * elapsed / cfg.iterations, best_val_nll=best,
                   trained_solver=evaluate_flow(flow, x_test, flow.method, flow.step),
                   rediscretized_dopri5=evaluate_flow(flow, x_test, "dopri5", Adaptive(1e-5, 1e-5)))
    (folder.path / "summary.json").write_text(json.dumps(summary, indent=1))
    from .cnf_figures import plot_density_and_samples
    plot_density_and_samples(flow, cfg.data, folder.path)
    return summary
