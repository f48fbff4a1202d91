"""Training a neural ODE on one time series (seed 000 §4.1), with either gradient mode.

Each iteration: solve from u0 through all observation times, loss = sum of squared errors,
backward, Adam step. Logged per iteration: loss, wall time (derivative checks excluded),
forward and backward NFE. Writes a run folder with config, metrics, checkpoint and figures.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import Tensor

from ..data import load_series_csv, make_spiral
from ..gradients import DiscretizeOptimize, OptimizeDiscretize, derivative_check
from ..models import TimeSeriesODE, VectorFieldMLP
from ..solvers.stepping import Adaptive, FixedStep
from .progress import Progress
from .run_folder import RunFolder

MODES = ("disc-opt", "opt-disc")
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class TimeSeriesConfig:
    data: str = "spiral"                 # 'spiral' or a CSV path
    time_column: str = "t"
    mode: str = "disc-opt"               # 'disc-opt' (rk4 on the data grid) or 'opt-disc' (dopri5 adjoint)
    method: Optional[str] = None         # default rk4 for disc-opt, dopri5 for opt-disc
    step_size: Optional[float] = None    # fixed step; default: the data spacing
    rtol: float = 1e-7
    atol: float = 1e-9
    seminorm: bool = False
    compile: bool = False                # solve through torch.compile (first iteration compiles)
    iterations: int = 300
    lr: float = 0.1
    seed: int = 0
    hidden: List[int] = field(default_factory=lambda: [50])
    activation: str = "tanh"
    transform: str = "cube"
    dtype: str = "float64"
    check_at: List[int] = field(default_factory=lambda: [14, 24])
    snapshot_at: List[int] = field(default_factory=lambda: [0, 25, 100, 300])
    extrapolate_to: float = 6.0
    loss_threshold: float = 0.1

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; valid: {', '.join(MODES)}")
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {self.dtype!r}; valid: {', '.join(DTYPES)}")
        if self.iterations < 1 or self.lr <= 0:
            raise ValueError("iterations must be >= 1 and lr > 0")

    def solver_kwargs(self) -> Dict[str, Any]:
        if self.mode == "disc-opt":
            return dict(method=self.method or "rk4", step=FixedStep(self.step_size),
                        gradient=DiscretizeOptimize(), compile=self.compile)
        step = FixedStep(self.step_size) if self.step_size else Adaptive(self.rtol, self.atol)
        return dict(method=self.method or "dopri5", step=step, gradient=OptimizeDiscretize(seminorm=self.seminorm),
                    compile=self.compile)


def load_data(cfg: TimeSeriesConfig) -> Tuple[Tensor, Tensor]:
    dtype = DTYPES[cfg.dtype]
    if cfg.data == "spiral":
        return make_spiral(dtype=dtype)
    t, u, _ = load_series_csv(cfg.data, time_column=cfg.time_column, dtype=dtype)
    return t, u


def build_model(cfg: TimeSeriesConfig, dim: int) -> TimeSeriesODE:
    torch.manual_seed(cfg.seed)  # same seed -> identical initial parameters in both modes
    return TimeSeriesODE(VectorFieldMLP(dim, cfg.hidden, cfg.activation, cfg.transform, DTYPES[cfg.dtype]))


@dataclass
class TrainResult:
    losses: List[float]
    wall: List[float]
    ms_per_iter: float
    final_loss: float
    iters_to_threshold: Optional[int]
    time_to_threshold: Optional[float]
    checks: Dict[int, Dict[str, Any]]
    snapshots: Dict[int, Tensor]
    nfe_forward: float
    nfe_backward: float


def train_timeseries(cfg: TimeSeriesConfig, out: Optional[Path] = None, progress: bool = True) -> TrainResult:
    """Train one model; with ``out`` write the run folder (config, metrics.csv, checkpoint, figures)."""
    cfg.validate()
    t, u = load_data(cfg)
    model = build_model(cfg, u.shape[1])
    kw = cfg.solver_kwargs()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    folder = RunFolder(out) if out is not None else None
    if folder:
        folder.write_config(asdict(cfg))
    u0 = u[0]
    loss_fn = lambda: model.loss(model.solve(u0, t, **kw).ys, u)  # noqa: E731
    bar = Progress(cfg.iterations, f"{cfg.mode}", enabled=progress)
    losses, wall, checks, snapshots = [], [], {}, {}
    nfe_f = nfe_b = 0
    elapsed = 0.0
    try:
        for it in range(cfg.iterations):
            if it in cfg.check_at:
                chk = derivative_check(loss_fn, list(model.parameters()), seed=cfg.seed)
                checks[it] = dict(chk.__dict__, passed=chk.passed)
            start = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            sol = model.solve(u0, t, **kw)
            loss = model.loss(sol.ys, u)
            loss.backward()
            opt.step()
            elapsed += time.perf_counter() - start
            value = float(loss.detach())
            if it in cfg.snapshot_at:
                snapshots[it] = sol.ys.detach().clone()
            losses.append(value)
            wall.append(elapsed)
            nfe_f += sol.stats.nfe
            nfe_b += sol.stats.nfe_backward
            if folder:
                folder.log(dict(iteration=it, loss=value, wall_time=elapsed, nfe_forward=sol.stats.nfe,
                                nfe_backward=sol.stats.nfe_backward))
            bar.update(it, loss=value, nfe=sol.stats.nfe + sol.stats.nfe_backward)
    finally:
        bar.close()
        if folder:
            folder.close()
    if cfg.iterations in cfg.snapshot_at:
        with torch.no_grad():
            snapshots[cfg.iterations] = model.solve(u0, t, **kw).ys.detach().clone()
    hit = next((i for i, v in enumerate(losses) if v < cfg.loss_threshold), None)
    result = TrainResult(losses, wall, 1e3 * elapsed / cfg.iterations, losses[-1], None if hit is None else hit + 1,
                         None if hit is None else wall[hit], checks, snapshots,
                         nfe_f / cfg.iterations, nfe_b / cfg.iterations)
    if folder:
        folder.save_checkpoint(dict(model=model.state_dict(), config=asdict(cfg), kind="timeseries"))
        summary = {k: v for k, v in asdict(result).items() if k not in ("losses", "wall", "snapshots", "checks")}
        (folder.path / "summary.json").write_text(json.dumps(summary, indent=1))
        (folder.path / "derivative_checks.json").write_text(json.dumps(checks, indent=1))
        from .timeseries_figures import write_figures
        write_figures(folder.path, cfg, model, t, u, {cfg.mode: result})
    return result
