"""`odeflow train cnf`: FFJORD on a toy 2-D density, with RNODE, TO-FLOW and multilevel options.

Settings come from the defaults, then a config file (`--config run.json` or `.toml`, keys as in
`CNFConfig`, `schedule` as a list of stages), then the options given on the command line.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any, Dict

# option name -> (CNFConfig field, argparse keyword arguments)
_OPTIONS: Dict[str, Any] = {
    "--data": ("data", dict()),
    "--hidden": ("hidden", dict(type=int, nargs="+")),
    "--layer": ("layer", dict()),
    "--activation": ("activation", dict()),
    "--controls": ("controls", dict(type=int, help="control times for time-dependent weights (1: constant)")),
    "--T": ("T", dict(type=float, help="end time (initial value with --learn-T)")),
    "--mode": ("mode", dict(choices=["disc-opt", "opt-disc"])),
    "--method": ("method", dict()),
    "--step-size": ("step_size", dict(type=float, help="fixed step; 0 for adaptive steps with --rtol/--atol")),
    "--n-steps": ("n_steps", dict(type=int, help="exactly this many fixed steps on [0, T] (instead of --step-size)")),
    "--rtol": ("rtol", dict(type=float)),
    "--atol": ("atol", dict(type=float)),
    "--seminorm": ("seminorm", dict(action="store_true")),
    "--divergence": ("divergence", dict(choices=["exact", "hutchinson"])),
    "--iterations": ("iterations", dict(type=int)),
    "--time-budget": ("time_budget", dict(type=float, help="stop after this many seconds of training")),
    "--batch": ("batch", dict(type=int)),
    "--lr": ("lr", dict(type=float)),
    "--val-every": ("val_every", dict(type=int)),
    "--val-method": ("val_method", dict(help="validation solver (default: the training one)")),
    "--val-step-size": ("val_step_size", dict(type=float)),
    "--seed": ("seed", dict(type=int)),
    "--zero-init": ("zero_init", dict(action="store_true", help="start from f = 0 (RNODE)")),
    "--kinetic": ("kinetic", dict(type=float, help="RNODE lambda_K (e.g. 0.01)")),
    "--jacobian": ("jacobian", dict(type=float, help="RNODE lambda_J (e.g. 0.01)")),
    "--learn-T": ("learn_T", dict(action="store_true", help="TO-FLOW: learn the end time")),
    "--T-lr": ("T_lr", dict(type=float)),
    "--T-alpha": ("T_alpha", dict(type=float, help="temporal regularization alpha |T|")),
    "--T-eps": ("T_eps", dict(type=float, help="clip T to [eps, 2 T0 - eps]")),
    "--T-objective": ("T_objective", dict(choices=["loss", "nll"], help="what the T step minimises")),
    "--schedule": ("schedule", dict(help="multilevel stages, e.g. 'until=500 method=rk4 step=0.5 lr=1e-3; "
                                         "until=1000 method=rk4 step=0.25 lr=5e-4'")),
}


def register(train_sub: argparse._SubParsersAction) -> None:
    from ..training.cnf import CNFConfig
    defaults = CNFConfig()
    p = train_sub.add_parser("cnf", help="train a continuous normalizing flow on a toy 2-D density")
    p.add_argument("--config", type=Path, default=None, help="JSON or TOML file with CNFConfig fields")
    for flag, (name, kwargs) in _OPTIONS.items():
        kwargs = dict(kwargs)
        shown = getattr(defaults, name)
        kwargs["help"] = f"{kwargs.get('help', '')} (default {shown})".strip()
        p.add_argument(flag, dest=name, default=argparse.SUPPRESS, **kwargs)
    p.add_argument("--out", type=Path, default=Path("runs/cnf"))
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(run=run)


def read_config_file(path: Path) -> Dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    if path.suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # Python < 3.11
            raise ValueError(f"config file {path}: TOML needs Python 3.11 or later; use a .json file") from None
        parse, errors = tomllib.loads, (tomllib.TOMLDecodeError,)
    else:
        parse, errors = json.loads, (json.JSONDecodeError,)
    try:
        data = parse(path.read_text())
    except errors as err:
        raise ValueError(f"config file {path} cannot be parsed: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a table/object of CNFConfig fields")
    return data


def make_config(args: argparse.Namespace):
    from ..data.toy2d import TOY_DATASETS
    from ..training.cnf import CNFConfig
    from ..training.schedule import parse_schedule, schedule_as_dicts
    fields = {f.name for f in dataclasses.fields(CNFConfig)}
    values: Dict[str, Any] = read_config_file(args.config) if args.config else {}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(f"config file {args.config}: unknown keys {unknown}; valid: {', '.join(sorted(fields))}")
    values.update({k: v for k, v in vars(args).items() if k in fields})
    if values.get("step_size") == 0:
        values["step_size"] = None
    if "schedule" in values:
        values["schedule"] = schedule_as_dicts(parse_schedule(values["schedule"])) or None
    cfg = CNFConfig(**values)
    if cfg.data not in TOY_DATASETS:
        raise ValueError(f"unknown dataset {cfg.data!r}; valid: {', '.join(sorted(TOY_DATASETS))}")
    return cfg


def run(args: argparse.Namespace) -> int:
    from ..training.cnf import train_cnf
    cfg = make_config(args)
    s = train_cnf(cfg, args.out, progress=not args.quiet)
    t, r = s["trained_solver"], s["rediscretized_dopri5"]
    print(f"{cfg.mode}: {s['iterations']} iterations, {s['ms_per_iter']:.1f} ms/iter, T = {s['T']:.3f}; test NLL "
          f"{t['nll']:.3f} (inverse error {t['inverse_error']:.2e}, NFE {t['nfe']}); re-discretized dopri5 1e-5: "
          f"NLL {r['nll']:.3f}, inverse error {r['inverse_error']:.2e}, NFE {r['nfe']}; run folder {args.out}")
    return 0
