"""`odeflow train function-encoder`: basis neural ODEs on a family, zero-shot on new parameters."""
from __future__ import annotations

import argparse
import json
from typing import Any, Dict

from .config_options import add_config_options, make_config, non_negative_float, positive_float, positive_int
from ..training.distributed import is_main_process
from .training_run import report_errors

DEFAULT_OUT = "runs/function_encoder"

_OPTIONS: Dict[str, Any] = {
    "--family": ("family", dict(choices=["van-der-pol", "damped-oscillator"])),
    "--n-systems": ("n_systems", dict(type=positive_int, help="training systems (parameters drawn in the family's range)")),
    "--trajectories": ("trajectories", dict(type=positive_int, help="trajectories per training system")),
    "--horizon": ("horizon", dict(type=positive_float)),
    "--points": ("points", dict(type=positive_int)),
    "--n-basis": ("n_basis", dict(type=positive_int)),
    "--hidden": ("hidden", dict(type=positive_int, nargs="+")),
    "--activation": ("activation", dict()),
    "--gram-weight": ("gram_weight", dict(type=non_negative_float, help="weight of mean((G - I)^2)")),
    "--test-parameters": ("test_parameters", dict(type=json.loads,
                                                  help="JSON list of parameter vectors, e.g. '[[0.75], [3.0]]'")),
    "--demos": ("demos", dict(type=positive_int, help="demonstration trajectories per test system")),
    "--eval-trajectories": ("eval_trajectories", dict(type=positive_int)),
}


def register(train_sub: argparse._SubParsersAction) -> None:
    from ..tasks.function_encoder import FunctionEncoderConfig
    p = train_sub.add_parser("function-encoder", help="function encoder (eq. 35): zero-shot dynamics of a family")
    add_config_options(p, FunctionEncoderConfig, _OPTIONS, DEFAULT_OUT)
    p.set_defaults(run=run)


@report_errors
def run(args: argparse.Namespace) -> int:
    from ..tasks.function_encoder import FunctionEncoderConfig, FunctionEncoderTask
    from ..training import Trainer
    cfg, out, resume = make_config(FunctionEncoderConfig, args, DEFAULT_OUT)
    task = FunctionEncoderTask(cfg)
    summary = Trainer(task, out, quiet=args.quiet, tensorboard=args.tensorboard, resume=resume).fit()
    if is_main_process():
        print(f"{cfg.family}: {task.describe(summary)}; run folder {out}")
    return 0
