"""`odeflow discover --data series.csv --out RUN`: neural ODE on irregular noisy data -> regular
clean samples -> SINDy (seed 002). Writes equations.txt, coefficients.csv (one row per equation,
one column per library term named from the CSV's variable names), fit.png and summary.json."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("discover", help="recover equations from a time series (neural ODE + SINDy; needs pysindy)")
    p.add_argument("--data", type=Path, required=True,
                   help="CSV with a header: a time column first, then one column per variable")
    p.add_argument("--out", type=Path, required=True, help="run folder")
    p.add_argument("--time-column", default=None, help="name of the time column (default: the first column)")
    p.add_argument("--iterations", type=int, default=1500)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--hidden", type=int, nargs="+", default=[32, 32])
    p.add_argument("--window", type=int, default=8, help="observation intervals per shooting window")
    p.add_argument("--samples", type=int, default=1000, help="regular samples passed to SINDy")
    p.add_argument("--degree", type=int, default=3, help="polynomial library degree")
    p.add_argument("--threshold", type=float, default=0.05, help="STLSQ threshold")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--raw", action="store_true", help="also run SINDy directly on the raw data (raw_equations.txt)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..discover import NeuralFitConfig, discover_from_csv, fit_sindy
    from ..discover.figures import plot_fit
    cfg = NeuralFitConfig(hidden=tuple(args.hidden), iterations=args.iterations, lr=args.lr, window=args.window,
                          seed=args.seed)
    start = time.time()
    result = discover_from_csv(args.data, time_column=args.time_column, config=cfg, n_samples=args.samples,
                               degree=args.degree, threshold=args.threshold)
    seconds = time.time() - start
    out = args.out
    result.equations.write(out)
    t_reg, x_reg, _ = result.fit.resample(args.samples)
    plot_fit(result.t, result.x, t_reg, x_reg, result.variables, out / "fit.png")
    summary = dict(data=str(args.data), variables=result.variables, observations=int(result.t.shape[0]),
                   final_loss=result.fit.losses[-1], seconds=round(seconds, 1), equations=result.equations.lines(),
                   config=dict(vars(args), data=str(args.data), out=str(args.out), run=None))
    if args.raw:
        raw = fit_sindy(result.t, result.x, result.variables, degree=args.degree, threshold=args.threshold)
        (out / "raw_equations.txt").write_text("\n".join(raw.lines()) + "\n")
        summary["raw_equations"] = raw.lines()
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print("\n".join(result.equations.lines()))
    print(f"neural ODE fit {seconds:.1f} s, final loss {result.fit.losses[-1]:.3g}; equations.txt, coefficients.csv, "
          f"fit.png in {out}")
    return 0
