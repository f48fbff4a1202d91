"""`odeflow train classify`: ODE-Net, its ResNet twin, ANODE or SONODE on digits, the annuli or
an image set; `--epochs N` sets the iterations to N passes over the training split.
Irregular series (`--data gunpoint|uea:GunPoint|...|PATH.csv`, `--model random-cde|ode-rnn|
latent-ode|gru-dt|gru-d|ncde|nrde`, `--drop 0.5`) go to tasks.sequence_classify. The default,
random-cde, has no iterations (tasks.sequence_random fits its readout in closed form; the options
of training by iterations are refused); the trained models stop on a validation plateau inside a
budget that scales with the data, and `--iterations N` or `--epochs N` fixes it."""

from __future__ import annotations

import argparse
from typing import Any, Dict

from .config_cli import add_options, options_of
from .config_options import make_config
from .training_run import report_errors

DEFAULT_OUT = "runs/classify"

# what the config dataclass cannot say (every other option is generated from its fields)
_SPECIAL: Dict[str, Any] = {
    "--model": (
        "model",
        dict(
            choices=[
                "odenet",
                "resnet",
                "anode",
                "sonode",
                "ode-rnn",
                "latent-ode",
                "gru-dt",
                "gru-d",
                "ncde",
                "nrde",
                "random-cde",
            ],
            help="odenet/resnet/anode/sonode on vectors and images; random-cde (random CDE features, ridge "
            "readout fitted in closed form: no iterations)/ode-rnn/latent-ode/gru-dt/gru-d/ncde (neural CDE)/nrde "
            "(neural rough DE) on series",
        ),
    ),
    "--schedule": (
        "schedule",
        dict(help="multilevel stages, e.g. 'until=200 method=rk4 steps=2; until=400 method=rk4 steps=4 lr=1e-3'"),
    ),
}


def register(train_sub: argparse._SubParsersAction) -> None:
    from ..tasks.classify_config import ClassifyConfig

    p = train_sub.add_parser("classify", help="train an ODE-Net / ResNet / ANODE / SONODE classifier")
    add_options(p, ClassifyConfig, options_of(ClassifyConfig, _SPECIAL), DEFAULT_OUT)
    from ..tasks.sequence_classify_config import SequenceClassifyConfig

    seq = SequenceClassifyConfig()
    for flag, (name, kwargs) in options_of(SequenceClassifyConfig, engine=False).items():
        if name in _SERIES_ONLY:
            kwargs = dict(kwargs, help=f"series: {kwargs.get('help', '')} (default {getattr(seq, name)})")
            p.add_argument(flag, dest=name, default=argparse.SUPPRESS, **kwargs)
    _add_series_defaults(p, ClassifyConfig(), seq)
    p.set_defaults(run=run)


def _add_series_defaults(p: argparse.ArgumentParser, vectors: Any, series: Any) -> None:
    """Where series data has its own default for a shared option (patience, min_delta, lr, ...),
    the help says both: '(default None; series data: 10)'."""
    for action in p._actions:
        name = action.dest
        if not hasattr(vectors, name) or not hasattr(series, name) or name in _SERIES_ONLY:
            continue
        mine, theirs = getattr(series, name), getattr(vectors, name)
        if mine == theirs or not action.help or not action.help.endswith(")"):
            continue
        shown = mine
        if name == "iterations":
            shown = "none for random-cde; the trained models: set by the data (the budget rule), stopping on a plateau"
        elif mine is None:
            shown = "set by the data"
        action.help = f"{action.help[:-1]}; series data: {shown})".replace("%", "%%")


# series-only options (SequenceClassifyConfig fields without a ClassifyConfig twin)
_SERIES_ONLY = {
    "drop",
    "drop_mode",
    "latent_dim",
    "field_hidden",
    "ce_weight",
    "test_fraction",
    "spline",
    "ode_rtol",
    "per_sample",
    "windows",
    "normalize",
    "reservoir",
    "shifts",
}


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
    from ..models.sequence_classifiers import SEQUENCE_MODELS
    from ..tasks.sequence_classify_config import is_sequence_data

    data, model = getattr(args, "data", None), getattr(args, "model", None)
    if getattr(args, "resume", None) is not None and data is None and model is None:
        from ..training.checkpoint import load_checkpoint

        last = args.resume / "last.pt"
        return last.is_file() and load_checkpoint(last).get("kind") == "sequence-classify"
    if data is not None and is_sequence_data(data):
        if model is not None and model not in SEQUENCE_MODELS:
            raise ValueError(
                f"--model {model} classifies vectors and images; for the series {data!r} use one of "
                f"{', '.join(SEQUENCE_MODELS)}"
            )
        return True
    if model in SEQUENCE_MODELS:
        raise ValueError(
            f"--model {model} classifies irregular series; give --data gunpoint, uea:GunPoint (any set "
            f"sktime bundles) or a long CSV with a label column (got --data {data or 'digits (default)'})"
        )
    given = sorted(k for k in _SERIES_ONLY if k in vars(args))
    if given:
        raise ValueError(
            f"{', '.join('--' + k.replace('_', '-') for k in given)} apply to series data only "
            f"(--data gunpoint, uea:NAME or PATH.csv)"
        )
    return False


def _run_sequence(args: argparse.Namespace) -> int:
    import dataclasses

    from ..task_registry import TASKS
    from ..tasks.classify_config import ClassifyConfig
    from ..tasks.run import fit_task
    from ..tasks.sequence_classify_config import SequenceClassifyConfig
    from ..training.distributed import is_main_process

    seq_fields = {f.name for f in dataclasses.fields(SequenceClassifyConfig)}
    ignored = sorted(
        f.name for f in dataclasses.fields(ClassifyConfig) if f.name in vars(args) and f.name not in seq_fields
    )
    if ignored:
        raise ValueError(f"{', '.join('--' + k.replace('_', '-') for k in ignored)} do not apply to series models")
    entry = TASKS["sequence-classify"]
    cfg, out, resume = make_config(SequenceClassifyConfig, args, entry.default_out, adjust=_adjust_sequence)
    if cfg.model == "random-cde":
        from ..tasks.sequence_classify import train_sequence_classify

        if getattr(args, "tensorboard", False):
            raise ValueError(
                "--tensorboard logs training curves; random-cde (the default series model) has none (a closed-form "
                "fit): drop it, or pass --model ode-rnn (or another trained model)"
            )
        from ..tasks.sequence_random import describe_random_cde

        summary = train_sequence_classify(cfg, out, progress=False, resume=resume)
        print(f"{describe_random_cde(summary)}; run folder {out}")
        return 0
    task, summary = fit_task(entry.name, cfg, out, progress=not args.quiet, resume=resume, tensorboard=args.tensorboard)
    if is_main_process():
        print(f"{task.describe(summary)}; run folder {out}")
    return 0


@report_errors
def run(args: argparse.Namespace) -> int:
    from ..tasks.classify import train_classify
    from ..tasks.classify_config import ClassifyConfig
    from ..training.distributed import is_main_process

    if _is_sequence_run(args):
        return _run_sequence(args)
    cfg, out, resume = make_config(ClassifyConfig, args, DEFAULT_OUT, adjust=_adjust)
    s = train_classify(cfg, out, progress=not args.quiet, resume=resume, tensorboard=args.tensorboard)
    if is_main_process():
        print(
            f"{cfg.model} on {cfg.data}: {s['iterations']} iterations ({s['epochs_trained']:.1f} epochs, "
            f"{s['seconds_per_epoch']:.2f} s/epoch), {s['parameters']} parameters; test accuracy "
            f"{s['test_accuracy']:.4f}, NFE {s['test_nfe']}; run folder {out}"
        )
    return 0
