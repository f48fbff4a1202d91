"""`odeflow train latent`: latent ODE, ODE-RNN or RNN-Δt on irregularly-sampled series.

    odeflow train latent --model latent-ode|ode-rnn|rnn-dt --data periodic|physionet|co2|PATH.csv \\
        --task interpolation|extrapolation --fraction 0.3 --iterations N --out RUN
"""

from __future__ import annotations

import argparse
from typing import Any, Dict

from .config_cli import add_options, options_of
from .config_options import make_config
from .training_run import report_errors

DEFAULT_OUT = "runs/latent"


# what the config dataclass cannot say (every other option is generated from its fields)
_SPECIAL: Dict[str, Any] = {
    "--task": ("task_kind", dict(choices=["interpolation", "extrapolation"])),
}


def register(train_sub: argparse._SubParsersAction) -> None:
    from ..tasks.latent_config import LatentConfig

    p = train_sub.add_parser("latent", help="latent ODE / ODE-RNN / RNN-Δt on irregularly-sampled series")
    add_options(p, LatentConfig, options_of(LatentConfig, _SPECIAL), DEFAULT_OUT)
    p.set_defaults(run=run)


@report_errors
def run(args: argparse.Namespace) -> int:
    from ..tasks.latent import train_latent
    from ..tasks.latent_config import LatentConfig
    from ..training.distributed import is_main_process

    cfg, out, resume = make_config(LatentConfig, args, DEFAULT_OUT)
    s = train_latent(cfg, out, progress=not args.quiet, resume=resume, tensorboard=args.tensorboard)
    if is_main_process():
        extra = f", ELBO {s['test_elbo']:.1f}" if "test_elbo" in s else ""
        auc = f", mortality AUC {s['test_auc']:.3f}" if s.get("test_auc") is not None else ""
        print(
            f"{cfg.model} {cfg.mode} on {cfg.data} ({cfg.task_kind}, {int(100 * cfg.fraction)}% observed): "
            f"{s['iterations']} iterations, {s['ms_per_iter']:.0f} ms/iter; test MSE {s['test_mse']:.4f}"
            f"{extra}{auc}; run folder {out}"
        )
    return 0
