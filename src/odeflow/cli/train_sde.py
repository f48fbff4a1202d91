"""`odeflow train sde`: a neural SDE (torchsde; pip install 'odeflow[sde]') with uncertainty bands."""

from __future__ import annotations

import argparse

from .config_cli import add_options, options_of
from .config_options import make_config
from .training_run import report_errors

DEFAULT_OUT = "runs/sde"


def register(train_sub: argparse._SubParsersAction) -> None:
    from ..tasks.sde_config import SDEConfig

    p = train_sub.add_parser("sde", help="neural SDE with uncertainty bands (needs torchsde)")
    add_options(p, SDEConfig, options_of(SDEConfig), DEFAULT_OUT)
    p.set_defaults(run=run)


@report_errors
def run(args: argparse.Namespace) -> int:
    from ..tasks.sde import SDETask
    from ..tasks.sde_config import SDEConfig
    from ..training import Trainer
    from ..training.distributed import is_main_process

    cfg, out, resume = make_config(SDEConfig, args, DEFAULT_OUT)
    task = SDETask(cfg)
    summary = Trainer(task, out, quiet=args.quiet, tensorboard=args.tensorboard, resume=resume).fit()
    if is_main_process():
        print(f"{cfg.system}: {task.describe(summary)}; run folder {out}")
    return 0
