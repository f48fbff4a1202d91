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

from .config_options import add_config_options, make_config, positive_float, positive_int
from .training_run import report_errors
from ..training.distributed import is_main_process

DEFAULT_OUT = "runs/tabular"

_OPTIONS: Dict[str, Any] = {
    "--data": ("data", dict(help="power, gas, hepmass, miniboone, bsds300 (files), digits, breast_cancer (built in), "
                                 "or your own table: PATH.csv, PATH.npy or PATH.parquet (numeric columns; split "
                                 "80/10/10 with --seed, standardized)")),
    "--data-dir": ("data_dir", dict(help="folder with power/, gas/, hepmass/, miniboone/, BSDS300/ "
                                         "(default $ODEFLOW_DATA, else ./data)")),
    "--mode": ("mode", dict(choices=["disc-opt", "opt-disc"])),
    "--blocks": ("blocks", dict(type=positive_int, help="flow steps (CNF blocks)")),
    "--layers": ("layers", dict(type=positive_int, help="hidden layers per block")),
    "--multiplier": ("multiplier", dict(type=positive_int, help="hidden width = multiplier x dimension")),
    "--activation": ("activation", dict()),
    "--T": ("T", dict(type=positive_float, help="end time of each block")),
    "--method": ("method", dict()),
    "--step-size": ("step_size", dict(type=float, help="fixed step; 0 for adaptive steps with --rtol/--atol")),
    "--n-steps": ("n_steps", dict(type=positive_int)),
    "--rtol": ("rtol", dict(type=positive_float)),
    "--atol": ("atol", dict(type=positive_float)),
    "--seminorm": ("seminorm", dict(action="store_true")),
    "--divergence": ("divergence", dict(choices=["exact", "hutchinson"])),
    "--noise": ("noise", dict(choices=["gaussian", "rademacher"])),
    "--val-method": ("val_method", dict()),
    "--val-step-size": ("val_step_size", dict(type=positive_float)),
    "--fine-factor": ("fine_factor", dict(type=positive_int, help="re-discretized test with rk4 h / factor")),
    "--val-max": ("val_max", dict(type=positive_int, help="validation rows (unset: as many as take --val-share of "
                                                          "the training time, at least --val-min)")),
    "--val-share": ("val_share", dict(type=positive_float, help="share of training time a validation pass may take")),
    "--val-min": ("val_min", dict(type=positive_int, help="the fewest automatic validation rows (or the whole "
                                                          "validation set if smaller)")),
    "--test-max": ("test_max", dict(type=positive_int, help="test rows (unset: the whole test set)")),
    "--max-memory": ("max_memory", dict(type=positive_float, help="memory budget in GB (RAM, or GPU memory on CUDA); "
                                                                  "unset: in use + half of the free memory")),
    "--memory-plan": ("memory_plan", dict(choices=["auto", "plain", "checkpointed", "adjoint"],
                                          help="how gradients flow; auto: the fastest that fits --max-memory")),
    "--dtype": ("dtype", dict(choices=["float32", "float64"])),
    "--schedule": ("schedule", dict(help="multilevel stages, e.g. 'until=500 method=rk4 step=0.5 lr=1e-3; "
                                         "until=2000 method=rk4 step=0.25 lr=5e-4'")),
}


def register(train_sub: argparse._SubParsersAction) -> None:
    from ..tasks.tabular import TabularConfig
    p = train_sub.add_parser("tabular", help="density estimation on tabular data (seed 000 Table 2)")
    p.add_argument("--config", type=Path, default=None,
                   help="TOML file: TabularConfig keys, [model] and [disc-opt]/[opt-disc] tables "
                        "(default configs/<data>.toml when it exists)")
    add_config_options(p, TabularConfig, _OPTIONS, DEFAULT_OUT, config_file=False)
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

    def adjust(values: Dict[str, Any]) -> Dict[str, Any]:
        merged = {**file_values, **values}
        if is_table_path(merged.get("data")):   # evaluate/sample find it from any folder
            merged["data"] = str(Path(merged["data"]).expanduser().resolve())
        if merged.get("step_size") == 0:
            merged["step_size"] = None
        if isinstance(merged.get("schedule"), str):
            merged["schedule"] = schedule_as_dicts(parse_schedule(merged["schedule"])) or None
        return merged

    plain = argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "config"})
    from ..tasks.tabular import TabularConfig
    return make_config(TabularConfig, plain, DEFAULT_OUT, adjust=adjust)


@report_errors
def run(args: argparse.Namespace) -> int:
    from ..tasks.tabular import TabularTask, train_tabular
    cfg, out, resume = make_tabular_config(args)
    summary = train_tabular(cfg, out, progress=not args.quiet, resume=resume, tensorboard=args.tensorboard)
    if is_main_process():
        print(f"{TabularTask(cfg).describe(summary)}; {summary['iterations']} iterations, "
              f"{summary['ms_per_iter']:.0f} ms/iter; run folder {out}")
    return 0
