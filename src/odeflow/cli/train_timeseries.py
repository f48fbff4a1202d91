"""`odeflow train timeseries` and `odeflow compare timeseries` (seed 000 §4.1)."""
from __future__ import annotations

import argparse
from typing import Any, Dict

from .config_options import add_config_options, make_config, positive_float, positive_int
from ..training.distributed import is_main_process
from .training_run import report_errors

DEFAULT_OUT = "runs/timeseries"

_OPTIONS: Dict[str, Any] = {
    "--data": ("data", dict(help="'spiral' (built in) or a CSV file with a time column")),
    "--time-column": ("time_column", dict()),
    "--method": ("method", dict(help="solver (default rk4 for disc-opt, dopri5 for opt-disc)")),
    "--step-size": ("step_size", dict(type=positive_float, help="fixed step (default: the data spacing)")),
    "--rtol": ("rtol", dict(type=positive_float)),
    "--atol": ("atol", dict(type=positive_float)),
    "--seminorm": ("seminorm", dict(action="store_true")),
    "--compile": ("compile", dict(nargs="?", const="on", choices=["auto", "on", "off"],
                                  help="solve through torch.compile: 'on' (bare --compile), 'off', or 'auto' "
                                       "(compile only when the run is long enough to repay the compile; "
                                       "compiled solvers are kept in $ODEFLOW_CACHE_DIR, default ~/.cache/odeflow)")),
    "--hidden": ("hidden", dict(type=positive_int, nargs="+")),
    "--activation": ("activation", dict()),
    "--transform": ("transform", dict()),
    "--dtype": ("dtype", dict(choices=["float32", "float64"])),
    "--check-at": ("check_at", dict(type=int, nargs="*", help="iterations with a derivative check")),
    "--loss-threshold": ("loss_threshold", dict(type=positive_float)),
}


def _adjust(values: Dict[str, Any]) -> Dict[str, Any]:
    from ..tasks.timeseries import TimeSeriesConfig
    if "snapshot_at" not in values:
        values["snapshot_at"] = sorted({0, 25, 100, values.get("iterations", TimeSeriesConfig.iterations)})
    return values


def register(train_sub: argparse._SubParsersAction) -> None:
    from ..tasks.timeseries import TimeSeriesConfig
    p = train_sub.add_parser("timeseries", help="fit a neural ODE to a time series (seed 000 §4.1)")
    add_config_options(p, TimeSeriesConfig, {**_OPTIONS, "--mode": ("mode", dict(choices=["disc-opt", "opt-disc"]))},
                       DEFAULT_OUT)
    p.set_defaults(run=run_train)


def register_compare(compare_sub: argparse._SubParsersAction) -> None:
    from ..tasks.timeseries import TimeSeriesConfig
    c = compare_sub.add_parser("timeseries", help="both modes from the same initialisation, over seeds")
    add_config_options(c, TimeSeriesConfig, _OPTIONS, "runs/timeseries_compare")
    c.add_argument("--seeds", type=positive_int, default=1, help="number of seeds (0 .. N-1)")
    c.set_defaults(run=run_compare)


@report_errors
def run_train(args: argparse.Namespace) -> int:
    from ..tasks.timeseries import TimeSeriesConfig, train_timeseries
    cfg, out, resume = make_config(TimeSeriesConfig, args, DEFAULT_OUT, adjust=_adjust)
    r = train_timeseries(cfg, out, progress=not args.quiet, resume=resume, tensorboard=args.tensorboard)
    if is_main_process():
        print(f"{cfg.mode}: final loss {r.final_loss:.4g}, {r.ms_per_iter:.1f} ms/iter, "
              f"NFE fwd {r.nfe_forward:.0f} bwd {r.nfe_backward:.0f} per iter; run folder {out}")
    return 0


@report_errors
def run_compare(args: argparse.Namespace) -> int:
    from ..tasks.timeseries import TimeSeriesConfig
    from ..tasks.timeseries_compare import compare_modes, comparison_table
    if args.resume is not None:
        raise ValueError("compare runs cannot be resumed; use `odeflow train timeseries --resume RUN_DIR` per run")
    cfg, out, _ = make_config(TimeSeriesConfig, args, "runs/timeseries_compare", adjust=_adjust)
    results = compare_modes(cfg, list(range(args.seeds)), out, progress=not args.quiet)
    print(comparison_table(results, cfg.loss_threshold))
    print(f"figures and tables in {out}")
    return 0
