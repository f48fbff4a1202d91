"""A diverged run stops with the cause, keeps best.pt, and says so in summary.json."""

import json
import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from odeflow.training import StepOutput, Task, Trainer, TrainingConfig, TrainingError
from odeflow.training.checkpoint import load_checkpoint
from odeflow.training.divergence import DivergenceWatch


def _first_alarm(losses, factor=1000.0):
    watch = DivergenceWatch(factor)
    return next((i for i, v in enumerate(losses) if watch.update(float(v), i) is not None), None)


@pytest.mark.parametrize("seed", range(8))
def test_noisy_decreasing_losses_never_alarm(seed):
    rng = np.random.default_rng(seed)
    n = 400
    positive = np.exp(rng.uniform(0, 10)) * np.exp(-rng.uniform(1, 25) * np.linspace(0, 1, n))
    positive *= np.exp(rng.normal(0, 1.0, n))  # minibatch noise of a factor ~e
    assert _first_alarm(positive) is None
    signed = rng.uniform(1, 20) - rng.uniform(1, 30) * np.linspace(0, 1, n) + rng.normal(0, 1.0, n)
    assert _first_alarm(signed) is None
    tiny = 1e-12 * np.exp(rng.normal(0, 3.0, n))  # a fit at round-off level wobbles by orders of magnitude
    assert _first_alarm(np.concatenate([[1.0], tiny])) is None


@pytest.mark.parametrize("seed", range(8))
def test_growth_by_orders_of_magnitude_alarms_after_the_window(seed):
    rng = np.random.default_rng(seed)
    best = np.exp(rng.uniform(-3, 8))
    down = best * np.exp(np.linspace(3, 0, 30))
    up = best * np.exp(np.linspace(0, 12, 40))  # ~1.6e5 x the best at the end
    losses = np.concatenate([down, up])
    alarm = _first_alarm(losses)
    crossing = int(np.argmax((losses > 1000 * best) & (losses > losses[0])))
    assert alarm == crossing + 2  # three losses in a row above the bar
    assert _first_alarm(np.concatenate([down, [best * 1e6], down[-5:]])) is None  # one spike is not divergence
    nll = np.concatenate([np.linspace(5, -2, 30), -2 + np.geomspace(1, 1e6, 30)])
    assert _first_alarm(nll) is not None


@dataclass
class QuadConfig(TrainingConfig):
    iterations: int = 200
    optimizer: str = "sgd"
    lr: float = 0.1
    blow_up_at: int = 10_000  # from this iteration on the loss is 50x steeper: SGD at lr 0.1 is unstable
    checkpoint_every: int = 1000
    nan_at: int = -1  # this iteration's loss is NaN


class QuadTask(Task):
    """Minimise ||w - target||^2 with SGD; no validation, so best.pt follows the training loss."""

    name = "quad"

    def setup(self, ctx):
        g = torch.Generator().manual_seed(self.config.seed)
        self.model = nn.Linear(4, 1, dtype=torch.float64)
        self.target = torch.randn(5, generator=g, dtype=torch.float64)

    def before_iteration(self, iteration, ctx):
        self.iteration = iteration

    def batch(self, iteration, ctx):
        return None

    def training_loss(self, batch):
        w = torch.cat([self.model.weight.flatten(), self.model.bias])
        steep = 50.0 if self.iteration >= self.config.blow_up_at else 1.0  # heavy ball (momentum 0.9) unstable
        loss = steep * (w - self.target).pow(2).sum()
        if self.iteration == self.config.nan_at:
            loss = loss * math.nan
        return StepOutput(loss, dict(loss=loss.detach()))


def _fit(cfg, out):
    return Trainer(QuadTask(cfg), out, quiet=True).fit()


@pytest.mark.parametrize("seed", range(3))
def test_a_diverging_run_stops_with_status_diverged_and_keeps_best(tmp_path, seed):
    cfg = QuadConfig(seed=seed, blow_up_at=40)
    with pytest.raises(TrainingError, match="diverged") as info:
        _fit(cfg, tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["iteration"] == info.value.iteration
    assert 40 < info.value.iteration < 80 and "--lr" in summary["hint"]
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["iteration"] < 45 and math.isclose(best["train_loss"], summary["best_train_loss"])
    assert best["train_loss"] < 1e-3


@pytest.mark.parametrize("seed", range(3))
def test_a_stable_run_completes_and_best_holds_the_parameters_of_its_lowest_loss(tmp_path, seed):
    summary = _fit(QuadConfig(iterations=60, seed=seed), tmp_path)
    assert summary["status"] == "completed"
    rows = [float(r.split(",")[1]) for r in (tmp_path / "metrics.csv").read_text().splitlines()[1:]]
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["train_loss"] == min(rows) and best["iteration"] == rows.index(min(rows))
    task = QuadTask(QuadConfig(seed=seed))
    task.setup(None)
    task.model.load_state_dict(best["model"])
    task.iteration = 0
    assert float(task.training_loss(None).loss.detach()) == best["train_loss"]  # the saved weights give that loss


def test_a_non_finite_loss_is_recorded_as_diverged(tmp_path):
    cfg = QuadConfig(iterations=60, nan_at=20)
    with pytest.raises(TrainingError, match="not finite"):
        _fit(cfg, tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["iteration"] == 20
    assert load_checkpoint(tmp_path / "best.pt")["iteration"] < 20


def test_diverge_factor_must_exceed_one():
    with pytest.raises(ValueError, match="diverge_factor"):
        QuadConfig(diverge_factor=0.5).validate()


class ValidatedQuadTask(QuadTask):
    """The same problem with a validation metric (validated every val_every iterations)."""

    name = "quad_val"
    monitor = "val_loss"

    def validate(self, ctx):
        w = torch.cat([self.model.weight.flatten(), self.model.bias]).detach()
        return dict(val_loss=float((w - self.target).pow(2).sum()))


def test_a_run_that_diverges_before_its_first_validation_still_keeps_best(tmp_path):
    with pytest.raises(TrainingError, match="diverged"):
        Trainer(ValidatedQuadTask(QuadConfig(blow_up_at=30, val_every=500)), tmp_path, quiet=True).fit()
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["iteration"] < 30 and best["train_loss"] < 1e-3
    assert json.loads((tmp_path / "summary.json").read_text())["best_checkpoint"].endswith("best.pt")


def test_with_validation_best_follows_the_validation_metric(tmp_path):
    summary = Trainer(ValidatedQuadTask(QuadConfig(iterations=40, val_every=10)), tmp_path, quiet=True).fit()
    best = load_checkpoint(tmp_path / "best.pt")
    assert "val_loss" in best and math.isclose(best["val_loss"], summary["best_val_loss"])
