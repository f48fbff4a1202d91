"""`odeflow train sde`: a neural SDE (torchsde; pip install 'odeflow[sde]') with uncertainty bands."""
from __future__ import annotations

import argparse
from typing import Any, Dict

from .config_options import add_config_options, make_config, positive_float, positive_int
from ..training.distributed import is_main_process
from .training_run import report_errors

DEFAULT_OUT = "runs/sde"

_OPTIONS: Dict[str, Any] = {
    "--system": ("system", dict(choices=["ornstein-uhlenbeck", "double-well"])),
    "--n-paths": ("n_paths", dict(type=positive_int, help="training paths")),
    "--horizon": ("horizon", dict(type=positive_float)),
    "--points": ("points", dict(type=positive_int, help="observation times per path")),
    "--hidden": ("hidden", dict(type=positive_int, nargs="+")),
    "--activation": ("activation", dict()),
    "--dt": ("dt", dict(type=positive_float, help="SDE solver step")),
    "--method": ("method", dict(choices=["euler", "milstein", "srk"])),
    "--adjoint": ("adjoint", dict(action="store_true", help="torchsde's adjoint (memory independent of steps)")),
}


def register(train_sub: argparse._SubParsersAction) -> None:
    from ..tasks.sde import SDEConfig
    p = train_sub.add_parser("sde", help="neural SDE with uncertainty bands (needs torchsde)")
    add_config_options(p, SDEConfig, _OPTIONS, DEFAULT_OUT)
    p.set_defaults(run=run)


@report_errors
def run(args: argparse.Namespace) -> int:
    from ..tasks.sde import SDEConfig, SDETask
    from ..training import Trainer
    cfg, out, resume = make_config(SDEConfig, args, DEFAULT_OUT)
    task = SDETask(cfg)
    summary = Trainer(task, out, quiet=args.quiet, tensorboard=args.tensorboard, resume=resume).fit()
    if is_main_process():
        print(f"{cfg.system}: {task.describe(summary)}; run folder {out}")
    return 0
