"""SIGTERM/SIGINT during a long validation or the final evaluation stops the run within
seconds, with last.pt written, and the run resumes to the same end."""

import os
import signal
import time
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from odeflow.training import StepOutput, Task, Trainer, TrainingConfig, TrainingInterrupted
from odeflow.training.checkpoint import load_checkpoint

SLOW = 20.0  # seconds an evaluation would take if the signal were not honoured


@dataclass
class SlowEvalConfig(TrainingConfig):
    iterations: int = 12
    batch: int = 8
    val_every: int = 4
    checkpoint_every: int = 100
    signal_in: str = ""  # "validate" (at the second validation) or "finish"
    signum: int = int(signal.SIGTERM)


class SlowEvalTask(Task):
    name = "slow_eval"
    monitor = "val_mse"

    def setup(self, ctx):
        torch.manual_seed(self.config.seed)
        self.model = nn.Linear(2, 1, dtype=torch.float64)
        self.validations = 0

    def batch(self, iteration, ctx):
        return torch.randn(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(iteration))

    def training_loss(self, x):
        loss = (self.model(x) - x.sum(1, keepdim=True)).pow(2).mean()
        return StepOutput(loss, dict(loss=loss.detach()))

    def _slow(self, where):
        if self.config.signal_in != where:
            return
        os.kill(os.getpid(), self.config.signum)
        end = time.perf_counter() + SLOW
        while time.perf_counter() < end:  # a long evaluation made of many short steps
            time.sleep(0.01)

    def validate(self, ctx):
        self.validations += 1
        if self.validations == 2:
            self._slow("validate")
        return dict(val_mse=1.0 / self.validations)

    def finish(self, ctx):
        self._slow("finish")
        return dict(test_mse=0.0)


@pytest.mark.parametrize("where, signum", [("validate", signal.SIGTERM), ("finish", signal.SIGINT)])
def test_a_signal_in_an_evaluation_is_honoured_within_seconds(tmp_path, where, signum):
    start = time.perf_counter()
    with pytest.raises(TrainingInterrupted, match="--resume"):
        Trainer(SlowEvalTask(SlowEvalConfig(signal_in=where, signum=int(signum))), tmp_path, quiet=True).fit()
    assert time.perf_counter() - start < SLOW / 2  # well under the 20 s the evaluation would take
    last = load_checkpoint(tmp_path / "last.pt")
    assert last["iteration"] == (7 if where == "validate" else 11)
    assert signal.getsignal(signum) in (signal.SIG_DFL, signal.default_int_handler)  # handlers restored
    if where == "validate":  # the resumed run continues after the interrupted iteration
        task = SlowEvalTask(SlowEvalConfig(signal_in=where, signum=int(signum)))
        trainer = Trainer(task, tmp_path, quiet=True, resume=True)
        task.setup = lambda ctx: (SlowEvalTask.setup(task, ctx), setattr(task, "validations", 2))  # ran already
        result = trainer.fit()
        assert result["iterations"] == 12 and result["status"] == "completed"


class EarlySignalTask(SlowEvalTask):
    """SIGTERM while fetching the third batch: before the first validation (iteration 4)."""

    def batch(self, iteration, ctx):
        if iteration == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return super().batch(iteration, ctx)

    def training_loss(self, x):
        out = super().training_loss(x)
        self.losses.append(float(out.loss))
        return out


def test_a_run_interrupted_before_its_first_validation_keeps_a_best_pt(tmp_path):
    task = EarlySignalTask(SlowEvalConfig())
    task.losses = []
    with pytest.raises(TrainingInterrupted):
        Trainer(task, tmp_path, quiet=True).fit()
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["train_loss"] == pytest.approx(min(task.losses))
    assert best["iteration"] == task.losses.index(min(task.losses))
