"""The Trainer with a small regression task: stopping cleanly, early stopping, signals, logs."""

import csv
import json
import math
import os
import signal
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from odeflow.solvers.errors import SolverError
from odeflow.training import StepOutput, Task, Trainer, TrainingConfig, TrainingError, TrainingInterrupted
from odeflow.training.checkpoint import load_checkpoint
from odeflow.training.data import generated_shard


@dataclass
class LineConfig(TrainingConfig):
    iterations: int = 30
    batch: int = 16
    lr: float = 0.05
    val_every: int = 5
    checkpoint_every: int = 5
    fail_at: int = -1  # iteration whose loss is NaN / gradient inf / solver error
    failure: str = "loss"
    val_drift: float = 0.0  # > 0: the validation metric gets worse every time (early stopping)
    signal_at: int = -1


class LineTask(Task):
    """Fit y = 3x - 1 with a linear layer."""

    name = "line"
    monitor = "val_mse"

    def setup(self, ctx):
        self.model = nn.Linear(1, 1)
        self.iteration, self.validations = 0, 0

    def before_iteration(self, iteration, ctx):
        self.iteration = iteration
        if iteration == self.config.signal_at:
            os.kill(os.getpid(), signal.SIGTERM)

    def batch(self, iteration, ctx):
        draw = lambda n, s: torch.rand(n, 1, generator=torch.Generator().manual_seed(s))  # noqa: E731
        return generated_shard(draw, self.config.batch, self.config.seed, iteration, ctx.dist)

    def training_loss(self, x):
        cfg = self.config
        if self.iteration == cfg.fail_at and cfg.failure == "solver":
            raise SolverError("step size underflow", 0.3, 1e-12, "the problem may be stiff")
        loss = (self.model(x) - (3 * x - 1)).pow(2).mean()
        if self.iteration == cfg.fail_at and cfg.failure == "loss":
            loss = loss * float("nan")
        if self.iteration == cfg.fail_at and cfg.failure == "grad":
            loss = loss + torch.sqrt(self.model.weight * 0).sum()  # value 0, gradient NaN
        return StepOutput(loss, dict(loss=loss.detach()))

    def validate(self, ctx):
        self.validations += 1
        x = torch.linspace(0, 1, 11).unsqueeze(1)
        with torch.no_grad():
            mse = float((self.model(x) - (3 * x - 1)).pow(2).mean())
        return dict(val_mse=mse + self.config.val_drift * self.validations)

    def finish(self, ctx):
        return dict(test_mse=self.validate(ctx)["val_mse"])


def _rows(folder):
    return list(csv.DictReader((folder / "metrics.csv").open()))


def test_a_run_writes_the_run_folder_and_learns(tmp_path):
    summary = Trainer(LineTask(LineConfig(iterations=60)), tmp_path, quiet=True).fit()
    assert summary["test_mse"] < 0.1 and summary["iterations"] == 60
    assert json.loads((tmp_path / "summary.json").read_text())["test_mse"] == summary["test_mse"]
    rows = _rows(tmp_path)
    assert [int(r["iteration"]) for r in rows] == list(range(60))
    assert rows[0]["val_mse"] == "" and rows[4]["val_mse"] != ""
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["world_size"] == 1 and config["per_rank_batch"] == 16
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["val_mse"] == pytest.approx(summary["best_val_mse"])
    assert load_checkpoint(tmp_path / "last.pt")["iteration"] == 59


@pytest.mark.parametrize(
    "failure,cause",
    [
        ("loss", "loss is not finite"),
        ("grad", "gradient is not finite"),
        ("solver", "solver failed: step size underflow"),
    ],
)
def test_training_that_goes_wrong_stops_cleanly_and_keeps_checkpoints(tmp_path, failure, cause):
    with pytest.raises(TrainingError, match=cause) as info:
        Trainer(LineTask(LineConfig(fail_at=12, failure=failure)), tmp_path, quiet=True).fit()
    assert info.value.iteration == 12 and "iteration 12" in str(info.value)
    assert "lower the learning rate" in str(info.value)
    last = load_checkpoint(tmp_path / "last.pt")
    assert last["iteration"] == 9  # the last periodic checkpoint, untouched by the failure
    assert all(torch.isfinite(v).all() for v in last["model"].values())
    assert all(torch.isfinite(v).all() for v in load_checkpoint(tmp_path / "best.pt")["model"].values())
    assert len(_rows(tmp_path)) == 12  # iterations 0..11 logged, nothing of the failed one


def test_early_stopping_after_patience_validations_without_improvement(tmp_path):
    summary = Trainer(LineTask(LineConfig(val_drift=100.0, patience=2, iterations=100)), tmp_path, quiet=True).fit()
    assert summary["stopped_early"] and summary["iterations"] == 15  # best at 5, worse at 10 and 15
    assert summary["stopped"] == "plateau"


class ScriptedValidation(LineTask):
    """Validation values from a list (then constant): early stopping on known numbers."""

    script = [1.0, 0.9, 0.895, 0.89, 0.885, 0.88, 0.879, 0.878]

    def validate(self, ctx):
        self.validations += 1
        return dict(val_mse=self.script[min(self.validations, len(self.script)) - 1])


@pytest.mark.parametrize("min_delta,stop_at", [(0.0, 55), (0.05, 25), (0.011, 40), (0.0, None)])
def test_min_delta_needs_real_improvements_but_best_follows_every_one(tmp_path, min_delta, stop_at):
    cfg = LineConfig(iterations=60, patience=3 if stop_at else 99, min_delta=min_delta)
    summary = Trainer(ScriptedValidation(cfg), tmp_path, quiet=True).fit()
    # min_delta 0: every listed value is lower, the constant tail is the plateau; 0.05: 0.895,
    # 0.89, 0.885 are not real improvements on 0.9; 0.011: 0.885 (on 0.9) restarts the count,
    # then 0.88, 0.879, 0.878 do not; patience 99: the budget ends it
    assert summary["stopped"] == ("budget" if stop_at is None else "plateau")
    assert summary["iterations"] == (stop_at or 60)
    seen = ScriptedValidation.script[: summary["iterations"] // 5]
    assert load_checkpoint(tmp_path / "best.pt")["val_mse"] == min(seen)  # best.pt: the lowest value seen


def test_the_summary_says_why_the_run_stopped(tmp_path):
    full = Trainer(LineTask(LineConfig(iterations=12)), tmp_path / "a", quiet=True).fit()
    assert full["stopped"] == "budget" and full["iterations"] == 12 and not full["stopped_early"]
    timed = Trainer(LineTask(LineConfig(iterations=50, time_budget=1e-9)), tmp_path / "b", quiet=True).fit()
    assert timed["stopped"] == "time_budget" and timed["iterations"] == 1
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["stopped"] == "time_budget"


def test_sigterm_saves_last_checkpoint_and_resume_finishes_identically(tmp_path):
    with pytest.raises(TrainingInterrupted, match="--resume"):
        Trainer(LineTask(LineConfig(signal_at=7)), tmp_path / "a", quiet=True).fit()
    assert load_checkpoint(tmp_path / "a" / "last.pt")["iteration"] == 7  # the iteration in flight completed
    Trainer(LineTask(LineConfig(signal_at=7)), tmp_path / "a", quiet=True, resume=True).fit()
    Trainer(LineTask(LineConfig()), tmp_path / "b", quiet=True).fit()
    a, b = (load_checkpoint(tmp_path / d / "last.pt")["model"] for d in "ab")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [int(r["iteration"]) for r in _rows(tmp_path / "a")] == list(range(30))


def test_resume_refuses_changed_settings_but_allows_more_iterations(tmp_path):
    Trainer(LineTask(LineConfig(iterations=10)), tmp_path, quiet=True).fit()
    with pytest.raises(ValueError, match=r"changed settings \['lr'\]"):
        Trainer(LineTask(LineConfig(iterations=20, lr=0.1)), tmp_path, quiet=True, resume=True).fit()
    summary = Trainer(LineTask(LineConfig(iterations=20)), tmp_path, quiet=True, resume=True).fit()
    assert summary["iterations"] == 20 and len(_rows(tmp_path)) == 20
    with pytest.raises(FileNotFoundError, match="no last.pt"):
        Trainer(LineTask(LineConfig()), tmp_path / "new", quiet=True, resume=True).fit()


def test_tensorboard_event_files(tmp_path):
    pytest.importorskip("tensorboard")
    Trainer(LineTask(LineConfig(iterations=6)), tmp_path, quiet=True, tensorboard=True).fit()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert len(events.Scalars("loss")) == 6 and len(events.Scalars("val_mse")) == 2


def test_cosine_schedule_and_its_state_resume(tmp_path):
    Trainer(LineTask(LineConfig(iterations=10, lr_schedule="cosine")), tmp_path, quiet=True).fit()
    rows = _rows(tmp_path)
    lrs = [float(r["lr"]) for r in rows]
    assert lrs[0] < 0.05 and all(b < a for a, b in zip(lrs, lrs[1:]))
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)
    assert load_checkpoint(tmp_path / "last.pt")["scheduler"]["last_epoch"] == 10


@pytest.mark.parametrize(
    "field,value",
    [("iterations", 0), ("batch", -1), ("lr", 0.0), ("val_every", 0), ("optimizer", "adagrad"), ("patience", 0)],
)
def test_bad_settings_are_named(field, value):
    with pytest.raises(ValueError, match=field):
        LineTask(LineConfig(**{field: value}))


def test_without_a_run_folder_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    summary = Trainer(LineTask(LineConfig(iterations=5)), None, quiet=True).fit()
    assert math.isfinite(summary["test_mse"]) and list(tmp_path.iterdir()) == []
