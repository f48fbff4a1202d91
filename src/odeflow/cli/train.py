"""`odeflow train timeseries` and `odeflow compare timeseries`."""
from __future__ import annotations

import argparse
from pathlib import Path

from . import train_cnf
from ..training.timeseries import TimeSeriesConfig, train_timeseries
from ..training.timeseries_compare import compare_modes, comparison_table


def _timeseries_options(p: argparse.ArgumentParser) -> None:
    d = TimeSeriesConfig()
    p.add_argument("--data", default=d.data, help="'spiral' (built in) or a CSV file with a time column")
    p.add_argument("--time-column", default=d.time_column)
    p.add_argument("--method", default=None, help="solver (default rk4 for disc-opt, dopri5 for opt-disc)")
    p.add_argument("--step-size", type=float, default=None, help="fixed step (default: the data spacing)")
    p.add_argument("--rtol", type=float, default=d.rtol)
    p.add_argument("--atol", type=float, default=d.atol)
    p.add_argument("--seminorm", action="store_true")
    p.add_argument("--compile", action="store_true",
                   help="solve through torch.compile: several times faster per iteration at this size, "
                        "after a first iteration that compiles (~10-40 s)")
    p.add_argument("--iterations", type=int, default=d.iterations)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--hidden", type=int, nargs="+", default=d.hidden)
    p.add_argument("--activation", default=d.activation)
    p.add_argument("--transform", default=d.transform)
    p.add_argument("--dtype", default=d.dtype)
    p.add_argument("--check-at", type=int, nargs="*", default=d.check_at, help="iterations with a derivative check")
    p.add_argument("--loss-threshold", type=float, default=d.loss_threshold)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _config(args: argparse.Namespace, **over) -> TimeSeriesConfig:
    return TimeSeriesConfig(
        data=args.data, time_column=args.time_column, method=args.method, step_size=args.step_size,
        rtol=args.rtol, atol=args.atol, seminorm=args.seminorm, compile=args.compile, iterations=args.iterations, lr=args.lr,
        hidden=args.hidden, activation=args.activation, transform=args.transform, dtype=args.dtype,
        check_at=args.check_at, loss_threshold=args.loss_threshold,
        snapshot_at=sorted({0, 25, 100, args.iterations}), **over)


def register(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train a model").add_subparsers(dest="task", required=True)
    p = train.add_parser("timeseries", help="fit a neural ODE to a time series (seed 000 §4.1)")
    _timeseries_options(p)
    p.add_argument("--mode", choices=["disc-opt", "opt-disc"], default="disc-opt")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("runs/timeseries"))
    p.set_defaults(run=run_train)
    train_cnf.register(train)

    compare = sub.add_parser("compare", help="compare gradient modes").add_subparsers(dest="task", required=True)
    c = compare.add_parser("timeseries", help="both modes from the same initialisation, over seeds")
    _timeseries_options(c)
    c.add_argument("--seeds", type=int, default=1, help="number of seeds (0 .. N-1)")
    c.add_argument("--out", type=Path, default=Path("runs/timeseries_compare"))
    c.set_defaults(run=run_compare)


def run_train(args: argparse.Namespace) -> int:
    cfg = _config(args, mode=args.mode, seed=args.seed)
    r = train_timeseries(cfg, args.out, progress=not args.quiet)
    print(f"{cfg.mode}: final loss {r.final_loss:.4g}, {r.ms_per_iter:.1f} ms/iter, "
          f"NFE fwd {r.nfe_forward:.0f} bwd {r.nfe_backward:.0f} per iter; run folder {args.out}")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    cfg = _config(args)
    results = compare_modes(cfg, list(range(args.seeds)), args.out, progress=not args.quiet)
    print(comparison_table(results, cfg.loss_threshold))
    print(f"figures and tables in {args.out}")
    return 0
