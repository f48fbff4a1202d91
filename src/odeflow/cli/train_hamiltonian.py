"""`odeflow train hamiltonian`: Hamiltonian NN vs plain neural ODE on a pendulum / mass-spring."""

from __future__ import annotations

import argparse

from .config_cli import add_options, options_of
from .config_options import make_config
from .training_run import report_errors

DEFAULT_OUT = "runs/hamiltonian"


def register(train_sub: argparse._SubParsersAction) -> None:
    from ..tasks.hamiltonian_config import HamiltonianConfig

    p = train_sub.add_parser("hamiltonian", help="Hamiltonian NN on a pendulum / mass-spring; energy drift")
    add_options(
        p, HamiltonianConfig, options_of(HamiltonianConfig, skip={"n_val"}), DEFAULT_OUT
    )  # n_val: config files only
    p.set_defaults(run=run)


@report_errors
def run(args: argparse.Namespace) -> int:
    from ..tasks.hamiltonian import HamiltonianTask
    from ..tasks.hamiltonian_config import HamiltonianConfig
    from ..training import Trainer
    from ..training.distributed import is_main_process

    cfg, out, resume = make_config(HamiltonianConfig, args, DEFAULT_OUT)
    task = HamiltonianTask(cfg)
    summary = Trainer(task, out, quiet=args.quiet, tensorboard=args.tensorboard, resume=resume).fit()
    if is_main_process():
        print(f"{cfg.model} on {cfg.system}: {task.describe(summary)}; run folder {out}")
    return 0
