"""Step 1-2 of the seed's recipe (seed 002, "Neural ODEs + interpretable models"): fit a neural
ODE to irregular, noisy observations of one trajectory, then sample it clean and regularly.

The field works in standardized coordinates, dx/dt = s ⊙ g_θ((x − m)/s) (m, s: the data's mean
and std per variable), the initial state x(t_0) is learned along with θ (the first observation is
noisy too), and the loss is the mean squared standardized error at the observation times. The
horizon grows in stages (first third of the series, two thirds, all) so the fit does not settle
in a poor local minimum of a long oscillatory trajectory. Adam with a cosine learning rate.
Derivatives of the regular samples are the learned field itself, not finite differences.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from ..models.timeseries import VectorFieldMLP
from ..solve import solve
from ..solvers.stepping import FixedStep


@dataclass
class NeuralFitConfig:
    hidden: Sequence[int] = (32, 32)
    activation: str = "tanh"
    iterations: int = 600
    lr: float = 1e-2
    min_lr: float = 1e-4
    method: str = "rk4"
    steps_per_unit: Optional[float] = None  # solver steps per unit time (default: 200 over the span)
    stages: Sequence[float] = (1 / 3, 2 / 3, 1.0)
    seed: int = 0

    def validate(self) -> None:
        if self.iterations < 1 or self.lr <= 0 or self.min_lr < 0:
            raise ValueError(f"need iterations >= 1, lr > 0, min_lr >= 0; got {self.iterations}, {self.lr}, {self.min_lr}")
        if not self.stages or any(not 0 < s <= 1 for s in self.stages) or list(self.stages) != sorted(self.stages):
            raise ValueError(f"stages must be increasing fractions in (0, 1]; got {list(self.stages)}")


class StandardizedField(nn.Module):
    """dx/dt = s ⊙ g((x − m)/s) with g an MLP; m, s fixed buffers."""

    def __init__(self, mean: Tensor, std: Tensor, hidden: Sequence[int], activation: str) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.net = VectorFieldMLP(mean.shape[-1], hidden, activation, transform="identity", dtype=mean.dtype)

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        return self.std * self.net(t, (x - self.mean) / self.std)


@dataclass
class NeuralFit:
    field: StandardizedField
    x0: Tensor
    t0: float
    t_end: float
    losses: List[float] = field(default_factory=list)
    step: float = 0.0

    def trajectory(self, t: Tensor) -> Tensor:
        with torch.no_grad():
            return solve(self.field, self.x0, t.to(self.x0.dtype), method="rk4", step=FixedStep(self.step)).ys

    def resample(self, n: int = 1000) -> Tuple[Tensor, Tensor, Tensor]:
        """(t [n] regular on the observed span, x [n, d] from the fitted ODE, dx/dt [n, d] = f_θ(x))."""
        if n < 3:
            raise ValueError(f"need n >= 3 regular samples; got {n}")
        t = torch.linspace(self.t0, self.t_end, n, dtype=self.x0.dtype)
        x = self.trajectory(t)
        with torch.no_grad():
            return t, x, self.field(t[0], x)


def fit_neural_ode(t: Tensor, x: Tensor, config: Optional[NeuralFitConfig] = None) -> NeuralFit:
    """Fit dx/dt = f_θ(x) to observations x [n, d] at increasing times t [n] (float64 inside)."""
    cfg = config or NeuralFitConfig()
    cfg.validate()
    if x.dim() != 2 or t.dim() != 1 or x.shape[0] != t.shape[0] or x.shape[0] < 3:
        raise ValueError(f"need t [n] and x [n, d] with n >= 3; got t {tuple(t.shape)}, x {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()) or not bool(torch.isfinite(t).all()):
        raise ValueError("observations contain NaN or inf; drop or fill those rows first")
    if not bool((t[1:] > t[:-1]).all()):
        raise ValueError("times must be strictly increasing")
    t, x = t.to(torch.float64), x.to(torch.float64)
    torch.manual_seed(cfg.seed)
    std = x.std(dim=0).clamp_min(1e-8)
    fld = StandardizedField(x.mean(dim=0), std, cfg.hidden, cfg.activation)
    x0 = nn.Parameter(x[0].clone())
    span = float(t[-1] - t[0])
    h = span / 200 if cfg.steps_per_unit is None else 1.0 / cfg.steps_per_unit
    opt = torch.optim.Adam([*fld.parameters(), x0], lr=cfg.lr)
    losses: List[float] = []
    per_stage = math.ceil(cfg.iterations / len(cfg.stages))
    for it in range(cfg.iterations):
        frac = cfg.stages[min(it // per_stage, len(cfg.stages) - 1)]
        n_use = max(3, int((t <= t[0] + frac * span + 1e-12).sum()))
        lr = cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * it / cfg.iterations))
        for group in opt.param_groups:
            group["lr"] = lr
        pred = solve(fld, x0, t[:n_use], method=cfg.method, step=FixedStep(h)).ys
        loss = (((pred - x[:n_use]) / std) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return NeuralFit(fld, x0.detach(), float(t[0]), float(t[-1]), losses, h)
