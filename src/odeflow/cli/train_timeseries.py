"""`odeflow train timeseries` and `odeflow compare timeseries` (seed 000 §4.1)."""

from __future__ import annotations

import argparse
from typing import Any, Dict

from .config_cli import add_options, compile_option, options_of, positive_int
from .config_options import make_config
from .training_run import report_errors

DEFAULT_OUT = "runs/timeseries"

# what the config dataclass cannot say (every other option is generated from its fields)
_SPECIAL: Dict[str, Any] = {
    "--compile": compile_option("compile only when the run is long enough to repay the compile"),
    "--check-at": ("check_at", dict(type=int, nargs="*", help="iterations with a derivative check")),
}

# config-file-only settings (snapshot_at follows --iterations unless a config file sets it)
_NOT_ON_THE_COMMAND_LINE = {"snapshot_at", "extrapolate_to"}


def _adjust(values: Dict[str, Any]) -> Dict[str, Any]:
    from ..tasks.timeseries_config import TimeSeriesConfig

    if "snapshot_at" not in values:
        values["snapshot_at"] = sorted({0, 25, 100, values.get("iterations", TimeSeriesConfig.iterations)})
    return values


def register(train_sub: argparse._SubParsersAction) -> None:
    from ..tasks.timeseries_config import TimeSeriesConfig

    p = train_sub.add_parser("timeseries", help="fit a neural ODE to a time series (seed 000 §4.1)")
    add_options(p, TimeSeriesConfig, options_of(TimeSeriesConfig, _SPECIAL, skip=_NOT_ON_THE_COMMAND_LINE), DEFAULT_OUT)
    p.set_defaults(run=run_train)


def register_compare(compare_sub: argparse._SubParsersAction) -> None:
    from ..tasks.timeseries_config import TimeSeriesConfig

    c = compare_sub.add_parser("timeseries", help="both modes from the same initialisation, over seeds")
    add_options(
        c,
        TimeSeriesConfig,
        options_of(TimeSeriesConfig, _SPECIAL, skip={"mode", *_NOT_ON_THE_COMMAND_LINE}),
        "runs/timeseries_compare",
    )
    c.add_argument("--seeds", type=positive_int, default=1, help="number of seeds (0 .. N-1)")
    c.set_defaults(run=run_compare)


@report_errors
def run_train(args: argparse.Namespace) -> int:
    from ..tasks.timeseries import train_timeseries
    from ..tasks.timeseries_config import TimeSeriesConfig
    from ..training.distributed import is_main_process

    cfg, out, resume = make_config(TimeSeriesConfig, args, DEFAULT_OUT, adjust=_adjust)
    r = train_timeseries(cfg, out, progress=not args.quiet, resume=resume, tensorboard=args.tensorboard)
    if is_main_process():
        print(
            f"{cfg.mode}: final loss {r.final_loss:.4g}, {r.ms_per_iter:.1f} ms/iter, "
            f"NFE fwd {r.nfe_forward:.0f} bwd {r.nfe_backward:.0f} per iter; run folder {out}"
        )
    return 0


@report_errors
def run_compare(args: argparse.Namespace) -> int:
    from ..tasks.timeseries_compare import compare_modes, comparison_table
    from ..tasks.timeseries_config import TimeSeriesConfig

    if args.resume is not None:
        raise ValueError("compare runs cannot be resumed; use `odeflow train timeseries --resume RUN_DIR` per run")
    cfg, out, _ = make_config(TimeSeriesConfig, args, "runs/timeseries_compare", adjust=_adjust)
    results = compare_modes(cfg, list(range(args.seeds)), out, progress=not args.quiet)
    print(comparison_table(results, cfg.loss_threshold))
    print(f"figures and tables in {out}")
    return 0
