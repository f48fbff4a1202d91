"""The task registry: every line loads, matches its task, builds a parser; a new task is one file
plus one registry line (tests/helpers/toy_decay_task.py trained through `odeflow train`)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from odeflow.cli.commands import TRAIN_TASKS
from odeflow.cli.main import main
from odeflow.task_registry import TASKS, TaskEntry, task_entry
from odeflow.training import Task, TrainingConfig


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_line_names_a_config_and_a_task_of_that_name(name):
    entry = TASKS[name]
    config, task = entry.config_class(), entry.task_class()
    assert dataclasses.is_dataclass(config) and issubclass(config, TrainingConfig)
    assert issubclass(task, Task) and task.name == name == entry.name
    assert TRAIN_TASKS[name][1] == entry.description
    config().validate()  # the defaults are a valid run


def test_an_unknown_task_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown task 'cnf2'.*tabular"):
        task_entry("cnf2")


def test_train_refuses_another_tasks_config():
    from odeflow import train
    from odeflow.tasks.sde_config import SDEConfig

    with pytest.raises(TypeError, match="task 'cnf' takes a CNFConfig, got SDEConfig"):
        train("cnf", SDEConfig())


TOY = TaskEntry(
    "toy-decay",
    "helpers.toy_decay_task:ToyDecayConfig",
    "helpers.toy_decay_task:ToyDecayTask",
    "runs/toy",
    "fit the rate of y' = -k y",
)


def test_a_new_task_is_one_file_plus_one_registry_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(TASKS, TOY.name, TOY)
    monkeypatch.setitem(TRAIN_TASKS, TOY.name, ("train_generated", TOY.description))
    out = tmp_path / "run"
    assert main(["train", "toy-decay", "--rate", "2.0", "--iterations", "80", "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_rate"] == pytest.approx(2.0, rel=0.05)  # started at 0.2: it learned
    assert (out / "last.pt").is_file() and (out / "metrics.csv").is_file()
    assert "test_rate" in capsys.readouterr().out
    # and the API route gives the same task the same way
    from helpers.toy_decay_task import ToyDecayConfig
    from odeflow import train

    again = train("toy-decay", ToyDecayConfig(rate=2.0, iterations=80), progress=False)
    assert again["test_rate"] == pytest.approx(summary["test_rate"], rel=1e-6)
