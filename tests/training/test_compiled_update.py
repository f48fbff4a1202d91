"""The Trainer compiles the optimizer update when the task's solves are compiled
(`Task.compiles`, `training.compiled_update`): same losses as the eager update in float64,
one compile of the update under a cosine schedule (a tensor lr), and an exact resume."""

import csv
import os
import shutil
import signal

import pytest
import torch
from torch._dynamo.utils import counters

from odeflow.tasks.timeseries import TimeSeriesTask
from odeflow.tasks.timeseries_config import TimeSeriesConfig
from odeflow.training import Trainer, compiled_update
from odeflow.training.compiled_update import CompiledUpdate
from odeflow.training.errors import TrainingInterrupted
from odeflow.training.optim import lr_value, set_lr

needs_cxx = pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None, reason="compiling needs a C++ compiler"
)
CFG = dict(mode="disc-opt", iterations=6, lr=0.05, lr_schedule="cosine", check_at=[], snapshot_at=[])


def test_set_lr_changes_a_tensor_lr_in_place_and_lr_value_reads_it():
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))], lr=0.1)
    opt.param_groups[0]["lr"] = lr = torch.tensor(0.1, dtype=torch.float64)
    set_lr(opt, 0.025)
    assert opt.param_groups[0]["lr"] is lr and float(lr) == 0.025
    assert lr_value(opt) == 0.025 and isinstance(lr_value(opt), float)
    plain = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    set_lr(plain, 0.5)
    assert plain.param_groups[0]["lr"] == 0.5


def test_the_update_stays_eager_with_cuda_graphs_and_says_why(monkeypatch):
    calls = []
    monkeypatch.setattr(compiled_update, "keep_freed_memory_for_training", lambda: calls.append(1))
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    update = CompiledUpdate(opt, cuda_graph=True)
    opt.param_groups[0]["params"][0].grad = torch.ones(2)
    update()
    update()
    assert not update.active and "CUDA graphs" in (update.reason or "")
    assert not isinstance(opt.param_groups[0]["lr"], torch.Tensor)
    assert calls == []  # malloc is left alone when nothing compiles


def test_a_failing_compile_falls_back_to_the_eager_update_once_per_step(monkeypatch):
    def failing(fn):
        def call():
            raise torch._dynamo.exc.TorchDynamoException("no backend")

        return call

    monkeypatch.setattr(compiled_update, "keep_freed_memory_for_training", lambda: True)
    monkeypatch.setattr(compiled_update, "compile_problem", lambda cuda_graph: None)
    monkeypatch.setattr(torch, "compile", failing)
    p = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    opt = torch.optim.Adam([p], lr=0.1)
    update = CompiledUpdate(opt)
    for _ in range(3):
        p.grad = torch.ones(2, dtype=torch.float64)
        update()
    assert not update.active and "compiling it failed: no backend" in (update.reason or "")
    assert float(opt.state[p]["step"]) == 3  # every step ran exactly once


class _Watched(TimeSeriesTask):
    """Records the dynamo graph count before each iteration; raises SIGTERM at `stop_at`."""

    graphs: list = []
    stop_at = -1
    eager_update = False

    def before_iteration(self, iteration, ctx):
        type(self).graphs.append(counters["stats"]["unique_graphs"])
        if iteration == self.stop_at:
            os.kill(os.getpid(), signal.SIGTERM)
        super().before_iteration(iteration, ctx)

    def compiles(self):
        return False if self.eager_update else super().compiles()


def _losses(folder):
    with open(folder / "metrics.csv") as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


@needs_cxx
def test_compiled_update_follows_the_eager_one_compiles_once_and_resumes(tmp_path, monkeypatch):
    cfg = TimeSeriesConfig(**CFG, compile="on")
    malloc_calls = []
    monkeypatch.setattr(compiled_update, "keep_freed_memory_for_training", lambda: malloc_calls.append(1))
    monkeypatch.setattr(_Watched, "eager_update", True)
    Trainer(_Watched(cfg), tmp_path / "eager", quiet=True).fit()
    monkeypatch.setattr(_Watched, "eager_update", False)
    monkeypatch.setattr(_Watched, "graphs", [])
    trainer = Trainer(_Watched(cfg), tmp_path / "compiled", quiet=True)
    trainer.fit()
    assert trainer._update is not None and trainer._update.active and malloc_calls == [1]
    assert isinstance(trainer._opt.param_groups[0]["lr"], torch.Tensor)
    # the update compiles at the second update (iteration 1); the cosine lr changes every
    # iteration after it and compiles nothing more
    graphs = _Watched.graphs
    assert graphs[2] > graphs[1] and graphs[-1] == graphs[2], graphs
    eager, compiled = _losses(tmp_path / "eager"), _losses(tmp_path / "compiled")
    assert len(compiled) == 6 and compiled == pytest.approx(eager, rel=1e-10, abs=1e-12)
    # killed (SIGTERM) after iteration 3, resumed from last.pt with its tensor lr: the same run
    monkeypatch.setattr(_Watched, "stop_at", 3)
    with pytest.raises(TrainingInterrupted):
        Trainer(_Watched(cfg), tmp_path / "resumed", quiet=True).fit()
    monkeypatch.setattr(_Watched, "stop_at", -1)
    Trainer(_Watched(cfg), tmp_path / "resumed", quiet=True, resume=True).fit()
    assert _losses(tmp_path / "resumed") == pytest.approx(compiled, rel=1e-10, abs=1e-12)


def test_an_eager_solve_keeps_the_eager_update():
    cfg = TimeSeriesConfig(**dict(CFG, iterations=2), compile="off")
    trainer = Trainer(TimeSeriesTask(cfg), None, quiet=True)
    trainer.fit()
    assert trainer._update is None and not trainer.task.compiles()
    assert not isinstance(trainer._opt.param_groups[0]["lr"], torch.Tensor)
