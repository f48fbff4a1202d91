"""Training a CNF on a toy 2-D density (FFJORD; seed 000 §4.2.1) with the speed-ups of
seeds 001, 004 and 000 §4.2.5, alone or together.

Each iteration: a fresh batch; theta step on loss = mean NLL (Hutchinson or exact trace)
+ RNODE terms (lambda_K, lambda_J); then, with `learn_T`, the TO-FLOW step on T (own Adam,
alpha |T|, clipping); a multilevel `schedule` switches solver and learning rate at set
iterations. Every `val_every` iterations the test NLL is computed with the exact trace and the
validation solver (default: the training one; validation time is not counted as training
time); the best model is checkpointed. At the end the flow is evaluated again with a fine
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
from ..flows import CNF, EndTimeOptimizer
from ..flows.cnf import standard_normal_logprob
from ..nn import ODENet
from ..solvers.stepping import Adaptive
from .progress import Progress
from .run_folder import RunFolder
from .schedule import Stage, make_step, parse_schedule, stage_index


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
    n_steps: Optional[int] = None      # instead of step_size: exactly this many steps on [0, T]
    rtol: float = 1e-5
    atol: float = 1e-5
    divergence: str = "hutchinson"
    iterations: int = 1000
    batch: int = 512
    lr: float = 1e-3
    val_every: int = 100
    val_size: int = 2048
    val_method: Optional[str] = None        # None: validate with the training solver
    val_step_size: Optional[float] = None   # with val_method: None = adaptive rtol = atol = 1e-5
    seed: int = 0
    seminorm: bool = False
    controls: int = 1                        # > 1: weights interpolated between that many control times
    zero_init: bool = False                  # last layer zero, f = 0 at the start (RNODE)
    kinetic: float = 0.0                     # RNODE lambda_K
    jacobian: float = 0.0                    # RNODE lambda_J
    learn_T: bool = False                    # TO-FLOW
    T_lr: float = 1e-2
    T_alpha: float = 0.1
    T_eps: float = 0.1
    T_objective: str = "loss"                # 'loss' (NLL + RNODE terms) or 'nll' for the T step
    schedule: Optional[List[Dict[str, Any]]] = None   # multilevel stages (see training.schedule)
    time_budget: Optional[float] = None      # stop once this many seconds of training have passed

    def step(self):
        return make_step(self.step_size, self.n_steps, self.rtol, self.atol)

    def val_solver(self, flow: CNF):
        if self.val_method is None:
            return flow.method, flow.step
        return self.val_method, make_step(self.val_step_size)


def build_flow(cfg: CNFConfig) -> CNF:
    if cfg.mode not in ("disc-opt", "opt-disc"):
        raise ValueError(f"unknown mode {cfg.mode!r}; valid: disc-opt, opt-disc")
    if cfg.controls < 1:
        raise ValueError(f"controls must be >= 1; got {cfg.controls}")
    torch.manual_seed(cfg.seed)
    control_times = [cfg.T * k / (cfg.controls - 1) for k in range(cfg.controls)] if cfg.controls > 1 else None
    net = ODENet(2, cfg.hidden, layer=cfg.layer, activation=cfg.activation, zero_init=cfg.zero_init,
                 control_times=control_times)
    return CNF(net, 2, T=cfg.T, train_T=cfg.learn_T, divergence=cfg.divergence, method=cfg.method, step=cfg.step(),
               adjoint=cfg.mode == "opt-disc", seminorm=cfg.seminorm, kinetic=cfg.kinetic, jacobian=cfg.jacobian)


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
    stages = parse_schedule(cfg.schedule)
    flow = build_flow(cfg)
    folder = RunFolder(out)
    folder.write_config(asdict(cfg))
    opt = torch.optim.Adam([p for n, p in flow.named_parameters() if n != "T"], lr=cfg.lr)
    end_time = EndTimeOptimizer(flow, cfg.T_lr, cfg.T_alpha, cfg.T_eps, objective=cfg.T_objective) if cfg.learn_T else None
    x_val = sample_toy(cfg.data, cfg.val_size, seed=10_000 + cfg.seed)
    bar = Progress(cfg.iterations, f"cnf {cfg.mode}", enabled=progress)
    best, elapsed, stage, it = float("inf"), 0.0, -1, -1
    try:
        for it in range(cfg.iterations):
            k = stage_index(stages, it) if stages else stage
            if k != stage:
                stage = k
                _enter_stage(flow, opt, stages[stage])
            x = sample_toy(cfg.data, cfg.batch, seed=cfg.seed * 1_000_003 + it)
            start = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss, parts = flow.loss(x)
            loss.backward()
            opt.step()
            stats = flow.last_stats
            if end_time is not None:
                end_time.step(parts["z_T"])
            elapsed += time.perf_counter() - start
            row: Dict[str, Any] = dict(iteration=it, loss=float(loss.detach()), nll=float(parts["nll"]),
                                       kinetic=float(parts.get("kinetic", 0.0)),
                                       jacobian=float(parts.get("jacobian", 0.0)), T=float(flow.T.detach()),
                                       stage=max(stage, 0), wall_time=elapsed, nfe_forward=stats.nfe,
                                       nfe_backward=stats.nfe_backward, val_nll="")
            done = it + 1 == cfg.iterations or (cfg.time_budget is not None and elapsed >= cfg.time_budget)
            if (it + 1) % cfg.val_every == 0 or done:
                val = evaluate_flow(flow, x_val, *cfg.val_solver(flow))["nll"]
                row["val_nll"] = val
                if val < best:
                    best = val
                    folder.save_checkpoint(dict(model=flow.state_dict(), config=asdict(cfg), kind="cnf",
                                                iteration=it, val_nll=val), "best.pt")
            folder.log(row)
            bar.update(it, loss=row["loss"], nfe=stats.nfe + stats.nfe_backward)
            if done:
                break
    finally:
        bar.close()
        folder.close()
    folder.save_checkpoint(dict(model=flow.state_dict(), config=asdict(cfg), kind="cnf", iteration=it), "last.pt")
    x_test = sample_toy(cfg.data, cfg.val_size, seed=20_000 + cfg.seed)
    summary = dict(ms_per_iter=1e3 * elapsed / (it + 1), iterations=it + 1, train_seconds=elapsed,
                   best_val_nll=best, T=float(flow.T.detach()),
                   trained_solver=evaluate_flow(flow, x_test, flow.method, flow.step),
                   rediscretized_dopri5=evaluate_flow(flow, x_test, "dopri5", Adaptive(1e-5, 1e-5)))
    (folder.path / "summary.json").write_text(json.dumps(summary, indent=1))
    from .cnf_figures import plot_density_and_samples, plot_forward_inverse
    plot_density_and_samples(flow, cfg.data, folder.path)
    plot_forward_inverse(flow, x_test[:2000], folder.path / "forward_inverse.png",
                         title=f"{cfg.mode} {flow.method}: x, f(x), f^-1(f(x))")
    return summary


def _enter_stage(flow: CNF, opt: torch.optim.Optimizer, stage: Stage) -> None:
    flow.set_solver(stage.method, stage.step())
    if stage.lr is not None:
        for group in opt.param_groups:
            group["lr"] = stage.lr
