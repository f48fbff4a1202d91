"""The peer a user would pick instead: a neural CDE classifier (Kidger et al. 2020) built on
torchcde (the `bench` extra; not a dependency of odeflow itself).

    z(t0) = ζ(X(t0)),  z(t) = z(t0) + ∫ f_θ(z(s)) dX(s),  logits = ℓ(z(t_end))

X: Hermite cubic spline with backward differences (torchcde) through (time, values) on the
data set's grid; dropped values are NaN and torchcde fills them by linear interpolation,
as in the paper's irregular-sampling protocol. f_θ: MLP with a tanh output, reshaped to
[hidden, channels]; RK4 with one step per grid interval (Disc-Opt, no adjoint).
Uses exactly the series (drops, normalisation, splits) of tasks/sequence_classify.py.
"""

from __future__ import annotations

import time
from typing import Dict, List

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from odeflow.data.irregular import Series
from odeflow.tasks.sequence_classify import SequenceClassifyConfig, load_sequence_data


class CDEField(nn.Module):
    def __init__(self, channels: int, hidden: int, width: int) -> None:
        super().__init__()
        self.channels, self.hidden = channels, hidden
        self.net = nn.Sequential(nn.Linear(hidden, width), nn.ReLU(), nn.Linear(width, hidden * channels), nn.Tanh())

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        return self.net(z).view(*z.shape[:-1], self.hidden, self.channels)


class NeuralCDE(nn.Module):
    def __init__(self, channels: int, hidden: int, width: int, classes: int, step: float) -> None:
        super().__init__()
        self.initial = nn.Linear(channels, hidden)
        self.field = CDEField(channels, hidden, width)
        self.readout = nn.Linear(hidden, classes)
        self.step = step

    def forward(self, coeffs: Tensor) -> Tensor:
        import torchcde

        X = torchcde.CubicSpline(coeffs)
        z0 = self.initial(X.evaluate(X.interval[0]))
        z = torchcde.cdeint(
            X, self.field, z0, X.interval, adjoint=False, method="rk4", options=dict(step_size=self.step)
        )
        return self.readout(z[:, -1])


def to_paths(series: List[Series], grid: Tensor) -> Tensor:
    """[N, len(grid), 1 + D]: time channel, then the values (NaN where not observed)."""
    D = series[0].values.shape[1]
    x = torch.full((len(series), grid.shape[0], D), float("nan"))
    for n, s in enumerate(series):
        idx = torch.searchsorted(grid, s.times)
        x[n, idx] = torch.where(s.mask > 0, s.values, torch.full_like(s.values, float("nan")))
    return torch.cat([grid.expand(len(series), -1)[..., None], x], -1)


def train_ncde(cfg: SequenceClassifyConfig, hidden: int = 32, width: int = 32) -> Dict[str, float]:
    """Same data, iterations, batch, lr (cosine), gradient clip and seed as the odeflow run of cfg."""
    import torchcde

    cfg.validate()
    torch.manual_seed(cfg.seed)
    data = load_sequence_data(cfg)
    grid = torch.unique(torch.cat([s.times for s in data.train + data.val + data.test]))
    coeffs = {
        k: torchcde.hermite_cubic_coefficients_with_backward_differences(to_paths(v, grid))
        for k, v in (("train", data.train), ("test", data.test))
    }
    labels = {k: torch.tensor([int(s.label) for s in v]) for k, v in (("train", data.train), ("test", data.test))}
    # the spline is parametrised by the grid index (torchcde's default); time is channel 0
    model = NeuralCDE(1 + data.num_variables, hidden, width, len(data.classes), 1.0)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.iterations)
    g = torch.Generator().manual_seed(cfg.seed)
    n = len(data.train)
    per_epoch = n // cfg.batch
    perm, spent = torch.randperm(n, generator=g), 0.0
    for it in range(cfg.iterations):
        k = it % per_epoch
        if k == 0 and it > 0:
            perm = torch.randperm(n, generator=g)
        idx = perm[k * cfg.batch : (k + 1) * cfg.batch]
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(coeffs["train"][idx]), labels["train"][idx])
        opt.zero_grad()
        loss.backward()
        if cfg.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        spent += time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(coeffs["test"][i : i + 100]).argmax(-1) for i in range(0, len(data.test), 100)])
    return dict(
        test_accuracy=float((pred == labels["test"]).float().mean()),
        seconds_per_epoch=spent / cfg.iterations * per_epoch,
        parameters=sum(p.numel() for p in model.parameters()),
    )
