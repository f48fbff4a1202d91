"""`odeflow train hamiltonian`: Hamiltonian NN vs plain neural ODE on a pendulum / mass-spring."""
from __future__ import annotations

import argparse
from typing import Any, Dict

from .config_options import add_config_options, make_config, non_negative_float, positive_float, positive_int
from ..training.distributed import is_main_process
from .training_run import report_errors

DEFAULT_OUT = "runs/hamiltonian"

_OPTIONS: Dict[str, Any] = {
    "--system": ("system", dict(choices=["pendulum", "mass-spring"])),
    "--model": ("model", dict(choices=["hnn", "hnn-separable", "node"])),
    "--hidden": ("hidden", dict(type=positive_int, nargs="+")),
    "--activation": ("activation", dict()),
    "--n-train": ("n_train", dict(type=positive_int, help="training trajectories")),
    "--horizon": ("horizon", dict(type=positive_float, help="training trajectory length")),
    "--points": ("points", dict(type=positive_int, help="samples per training trajectory")),
    "--noise": ("noise", dict(type=non_negative_float)),
    "--integrator": ("integrator", dict(choices=["rk4", "dopri5", "leapfrog"], help="for the long rollouts")),
    "--step-size": ("step_size", dict(type=positive_float)),
    "--rollout-factor": ("rollout_factor", dict(type=positive_float, help="rollout length / training horizon")),
    "--n-test": ("n_test", dict(type=positive_int)),
}


def register(train_sub: argparse._SubParsersAction) -> None:
    from ..tasks.hamiltonian import HamiltonianConfig
    p = train_sub.add_parser("hamiltonian", help="Hamiltonian NN on a pendulum / mass-spring; energy drift")
    add_config_options(p, HamiltonianConfig, _OPTIONS, DEFAULT_OUT)
    p.set_defaults(run=run)


@report_errors
def run(args: argparse.Namespace) -> int:
    from ..tasks.hamiltonian import HamiltonianConfig, HamiltonianTask
    from ..training import Trainer
    cfg, out, resume = make_config(HamiltonianConfig, args, DEFAULT_OUT)
    task = HamiltonianTask(cfg)
    summary = Trainer(task, out, quiet=args.quiet, tensorboard=args.tensorboard, resume=resume).fit()
    if is_main_process():
        print(f"{cfg.model} on {cfg.system}: {task.describe(summary)}; run folder {out}")
    return 0
