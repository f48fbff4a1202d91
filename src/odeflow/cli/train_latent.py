"""`odeflow train latent`: latent ODE, ODE-RNN or RNN-Δt on irregularly-sampled series.

    odeflow train latent --model latent-ode|ode-rnn|rnn-dt --data periodic|physionet|co2|PATH.csv \\
        --task interpolation|extrapolation --fraction 0.3 --iterations N --out RUN
"""
from __future__ import annotations

import argparse
from typing import Any, Dict

from ..training.distributed import is_main_process
from .config_options import add_config_options, make_config, positive_float, positive_int
from .training_run import report_errors

DEFAULT_OUT = "runs/latent"


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {value}")
    return value


# option name -> (LatentConfig field, argparse keyword arguments)
_OPTIONS: Dict[str, Any] = {
    "--model": ("model", dict(choices=["latent-ode", "ode-rnn", "rnn-dt"])),
    "--data": ("data", dict(help="periodic (toy), co2 (statsmodels, thinned), physionet (files in --data-dir) "
                                 "or a long-format CSV series,time,variable,value")),
    "--task": ("task_kind", dict(choices=["interpolation", "extrapolation"])),
    "--fraction": ("fraction", dict(type=_fraction, help="share of points the encoder sees")),
    "--t-split": ("t_split", dict(type=float, help="extrapolation boundary (default: middle of the time span)")),
    "--data-dir": ("data_dir", dict(help="PhysioNet 2012 directory (set-a/*.txt, Outcomes-a.txt)")),
    "--quantization": ("quantization", dict(type=positive_float, help="PhysioNet time bins in hours")),
    "--max-records": ("max_records", dict(type=positive_int)),
    "--n-train": ("n_train", dict(type=positive_int, help="periodic toy: training series")),
    "--n-test": ("n_test", dict(type=positive_int, help="periodic toy: test series")),
    "--n-points": ("n_points", dict(type=positive_int, help="periodic toy: points per series")),
    "--noise": ("noise", dict(type=float, help="periodic toy: noise std")),
    "--time-scale": ("time_scale", dict(type=positive_float, help="multiply all times by this")),
    "--latent-dim": ("latent_dim", dict(type=positive_int)),
    "--hidden": ("hidden", dict(type=positive_int, help="recurrent hidden size")),
    "--field-hidden": ("field_hidden", dict(type=positive_int, help="width of the ODE nets")),
    "--encoder": ("encoder", dict(choices=["ode-rnn", "rnn"], help="latent ODE encoder")),
    "--poisson": ("poisson", dict(action="store_true", help="model observation times by a Poisson process")),
    "--obs-std": ("obs_std", dict(type=positive_float, help="std of the Gaussian likelihood")),
    "--samples": ("samples", dict(type=positive_int, help="z0 samples per series in training")),
    "--eval-samples": ("eval_samples", dict(type=positive_int)),
    "--iwae": ("iwae", dict(action="store_true", help="importance-weighted bound instead of the ELBO")),
    "--kl-warmup": ("kl_warmup", dict(type=int, help="iterations with KL weight 0")),
    "--kl-rate": ("kl_rate", dict(type=float, help="KL weight 1 - rate^(i - warmup)")),
    "--mode": ("mode", dict(choices=["disc-opt", "opt-disc"])),
    "--method": ("method", dict(help="Disc-Opt decoder method")),
    "--step-size": ("step_size", dict(type=positive_float)),
    "--rtol": ("rtol", dict(type=positive_float)),
    "--atol": ("atol", dict(type=positive_float)),
    "--val-size": ("val_size", dict(type=positive_int)),
    "--test-fraction": ("test_fraction", dict(type=_fraction, help="records held out (CSV, PhysioNet)")),
}


def register(train_sub: argparse._SubParsersAction) -> None:
    from ..tasks.latent import LatentConfig
    p = train_sub.add_parser("latent", help="latent ODE / ODE-RNN / RNN-Δt on irregularly-sampled series")
    add_config_options(p, LatentConfig, _OPTIONS, DEFAULT_OUT)
    p.set_defaults(run=run)


@report_errors
def run(args: argparse.Namespace) -> int:
    from ..tasks.latent import LatentConfig, train_latent
    cfg, out, resume = make_config(LatentConfig, args, DEFAULT_OUT)
    s = train_latent(cfg, out, progress=not args.quiet, resume=resume, tensorboard=args.tensorboard)
    if is_main_process():
        extra = f", ELBO {s['test_elbo']:.1f}" if "test_elbo" in s else ""
        auc = f", mortality AUC {s['test_auc']:.3f}" if s.get("test_auc") is not None else ""
        print(f"{cfg.model} {cfg.mode} on {cfg.data} ({cfg.task_kind}, {int(100 * cfg.fraction)}% observed): "
              f"{s['iterations']} iterations, {s['ms_per_iter']:.0f} ms/iter; test MSE {s['test_mse']:.4f}"
              f"{extra}{auc}; run folder {out}")
    return 0
