"""Every training task odeflow knows, one line each: name, config class, task class, default run
folder and a one-line description.

`odeflow train NAME` and `odeflow.train(NAME, config)` are built from this table, so adding a task
is one file in ``odeflow/tasks/`` (a ``TrainingConfig`` subclass and a ``Task``) plus one line here.
Classes are named as ``"module:Class"`` under ``odeflow.tasks`` and imported on first use, so that
`odeflow --help` and `odeflow train --help` answer without importing torch.

A task whose command line needs more than its config's fields (a renamed flag, a second command
such as `odeflow compare timeseries`) names its hand-written module in ``odeflow.cli`` as ``cli``;
every other task gets a parser generated from its config dataclass (see cli/config_cli.py).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Dict, Optional


@dataclass(frozen=True)
class TaskEntry:
    """One training task: what `odeflow train NAME` builds and runs."""

    name: str
    config: str  # "module:Class" of its TrainingConfig subclass, under odeflow.tasks (or "pkg.module:Class")
    task: str  # "module:Class" of its Task, under odeflow.tasks (or "pkg.module:Class")
    default_out: str  # the run folder when --out is not given
    description: str  # the line `odeflow train --help` shows
    cli: Optional[str] = None  # hand-written parser module in odeflow.cli (None: generated)

    def config_class(self) -> Any:
        return _load(self.config)

    def task_class(self) -> Any:
        return _load(self.task)


def _load(where: str) -> Any:
    """'module:Class' under odeflow.tasks, or 'package.module:Class' for a task outside odeflow."""
    module, name = where.split(":")
    return getattr(importlib.import_module(module if "." in module else f"odeflow.tasks.{module}"), name)


_ENTRIES = (
    TaskEntry("timeseries", "timeseries_config:TimeSeriesConfig", "timeseries:TimeSeriesTask", "runs/timeseries",
              "fit a neural ODE to a time series (seed 000 §4.1)", cli="train_timeseries"),
    TaskEntry("cnf", "cnf2d_config:CNFConfig", "cnf2d:CNF2DTask", "runs/cnf",
              "train a continuous normalizing flow on a toy 2-D density", cli="train_cnf"),
    TaskEntry("tabular", "tabular_config:TabularConfig", "tabular:TabularTask", "runs/tabular",
              "density estimation on tabular data (seed 000 Table 2)", cli="train_tabular"),
    TaskEntry("image", "image_config:ImageConfig", "image:ImageTask", "runs/image",
              "train a multiscale image CNF (bits/dim, sample grids)", cli="train_image"),
    TaskEntry("classify", "classify_config:ClassifyConfig", "classify:ClassifyTask", "runs/classify",
              "train an ODE-Net / ResNet / ANODE / SONODE classifier", cli="train_classify"),
    TaskEntry("sequence-classify", "sequence_classify_config:SequenceClassifyConfig",
              "sequence_classify:SequenceClassifyTask", "runs/classify-series",
              "classify irregular series: ODE-RNN, latent ODE, GRU-D, neural CDE (UEA sets, long CSV)"),
    TaskEntry("latent", "latent_config:LatentConfig", "latent:LatentTask", "runs/latent",
              "latent ODE / ODE-RNN / RNN-Δt on irregularly-sampled series", cli="train_latent"),
    TaskEntry("hamiltonian", "hamiltonian_config:HamiltonianConfig", "hamiltonian:HamiltonianTask",
              "runs/hamiltonian", "Hamiltonian NN on a pendulum / mass-spring; energy drift"),
    TaskEntry("function-encoder", "function_encoder_config:FunctionEncoderConfig",
              "function_encoder:FunctionEncoderTask", "runs/function_encoder",
              "function encoder (eq. 35): zero-shot dynamics of a family", cli="train_function_encoder"),
    TaskEntry("sde", "sde_config:SDEConfig", "sde:SDETask", "runs/sde",
              "neural SDE with uncertainty bands (needs torchsde)"),
)  # fmt: skip

TASKS: Dict[str, TaskEntry] = {entry.name: entry for entry in _ENTRIES}


def task_entry(name: str) -> TaskEntry:
    """The registry line of ``name``; a clear error listing the known tasks otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; the tasks are: {', '.join(TASKS)}") from None
