"""`odeflow train tabular`: density estimation on tabular data with the stacked CNF of seed 000
Table 3 (power, gas, hepmass, miniboone, bsds300 from the standard files; digits and
breast_cancer built in).

Settings: `TabularConfig` defaults, then the config file (`--config FILE`, by default
configs/<data>.toml; its [model] table and the table of the chosen --mode are merged in), then
the options given on the command line. Example:
    odeflow train tabular --data digits --mode disc-opt --iterations 500 --out runs/digits_do
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Dict

from .config_cli import add_options, options_of
from .config_options import make_config
from .fm_defaults import apply_flow_matching_defaults, note_flow_matching_defaults
from .training_run import report_errors

DEFAULT_OUT = "runs/tabular"

# what the config dataclass cannot say (every other option is generated from its fields)
_SPECIAL: Dict[str, Any] = {
    "--step-size": ("step_size", dict(type=float, help="fixed step; 0 for adaptive steps with --rtol/--atol")),
    "--schedule": (
        "schedule",
        dict(
            help="multilevel stages, e.g. 'until=500 method=rk4 step=0.5 lr=1e-3; "
            "until=2000 method=rk4 step=0.25 lr=5e-4'"
        ),
    ),
}

# config-file-only settings (the [model] table, the evaluation chunk)
_NOT_ON_THE_COMMAND_LINE = {"layer", "train_T", "eval_chunk"}


def register(train_sub: argparse._SubParsersAction) -> None:
    from ..tasks.tabular_config import TabularConfig

    p = train_sub.add_parser("tabular", help="density estimation on tabular data (seed 000 Table 2)")
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="TOML file or a preset's name (`odeflow presets`): TabularConfig keys, [model] and "
        "[disc-opt]/[opt-disc] tables (default configs/<data>.toml when it exists, else the preset <data>)",
    )
    add_options(
        p,
        TabularConfig,
        options_of(TabularConfig, _SPECIAL, skip=_NOT_ON_THE_COMMAND_LINE),
        DEFAULT_OUT,
        config_file=False,
    )
    note_flow_matching_defaults(p)
    p.set_defaults(run=run)


def make_tabular_config(args: argparse.Namespace):
    from ..data.user_table import is_table_path
    from ..tasks.tabular import default_config_file, flatten_config
    from ..training.schedule import parse_schedule, schedule_as_dicts
    from .config_options import read_config_file

    path = args.config
    if args.resume is not None:
        if path is not None:
            raise ValueError("--config cannot be combined with --resume: the settings come from the run's last.pt")
        file_values: Dict[str, Any] = {}
    else:
        if path is None and not is_table_path(getattr(args, "data", "digits")):
            path = default_config_file(getattr(args, "data", "digits"))
        file_values = flatten_config(read_config_file(path), getattr(args, "mode", None), str(path)) if path else {}

    named = args.config is not None  # a file the user named counts as said; configs/<data>.toml does not

    def adjust(values: Dict[str, Any]) -> Dict[str, Any]:
        merged = {**file_values, **values}
        apply_flow_matching_defaults(merged, explicit=set(values) | (set(file_values) if named else set()))
        if is_table_path(merged.get("data")):  # evaluate/sample find it from any folder
            merged["data"] = str(Path(merged["data"]).expanduser().resolve())
        if merged.get("step_size") == 0:
            merged["step_size"] = None
        if isinstance(merged.get("schedule"), str):
            merged["schedule"] = schedule_as_dicts(parse_schedule(merged["schedule"])) or None
        return merged

    from ..tasks.tabular_config import TabularConfig

    plain = argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "config"})
    return make_config(TabularConfig, plain, DEFAULT_OUT, adjust=adjust)


@report_errors
def run(args: argparse.Namespace) -> int:
    from ..tasks.tabular import TabularTask, train_tabular
    from ..training.distributed import is_main_process

    cfg, out, resume = make_tabular_config(args)
    summary = train_tabular(cfg, out, progress=not args.quiet, resume=resume, tensorboard=args.tensorboard)
    if is_main_process():
        print(
            f"{TabularTask(cfg).describe(summary)}; {summary['iterations']} iterations, "
            f"{summary['ms_per_iter']:.0f} ms/iter; run folder {out}"
        )
    return 0
