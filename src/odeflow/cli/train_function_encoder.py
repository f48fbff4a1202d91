"""`odeflow train function-encoder`: basis neural ODEs on a family, zero-shot on new parameters."""

from __future__ import annotations

import argparse
import json
from typing import Any, Dict

from .config_cli import add_options, options_of
from .config_options import make_config
from .training_run import report_errors

DEFAULT_OUT = "runs/function_encoder"

# what the config dataclass cannot say (every other option is generated from its fields)
_SPECIAL: Dict[str, Any] = {
    "--test-parameters": (
        "test_parameters",
        dict(type=json.loads, help="JSON list of parameter vectors, e.g. '[[0.75], [3.0]]'"),
    ),
}


def register(train_sub: argparse._SubParsersAction) -> None:
    from ..tasks.function_encoder_config import FunctionEncoderConfig

    p = train_sub.add_parser("function-encoder", help="function encoder (eq. 35): zero-shot dynamics of a family")
    add_options(p, FunctionEncoderConfig, options_of(FunctionEncoderConfig, _SPECIAL), DEFAULT_OUT)
    p.set_defaults(run=run)


@report_errors
def run(args: argparse.Namespace) -> int:
    from ..tasks.function_encoder_config import FunctionEncoderConfig
    from ..tasks.run import fit_task
    from ..training.distributed import is_main_process

    cfg, out, resume = make_config(FunctionEncoderConfig, args, DEFAULT_OUT)
    task, summary = fit_task("function-encoder", cfg, out, not args.quiet, resume, args.tensorboard)
    if is_main_process():
        print(f"{task.describe(summary)}; run folder {out}")
    return 0
