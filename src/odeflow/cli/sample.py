"""`odeflow sample`: draw samples from a trained CNF (z ~ N(0, I) integrated back from T to 0)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable, List, Optional

from .solver_options import add_solver_options, chosen_solver


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="draw samples from a trained CNF checkpoint")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("samples.csv"), help=".csv or .npy")
    p.add_argument("--plot", type=Path, default=None, help="also write a scatter plot (PNG)")
    add_solver_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .checkpoint_kinds import SAMPLERS, handler_for, resolve_checkpoint

    if args.n < 1:
        raise ValueError(f"--n must be >= 1; got {args.n}")
    args.checkpoint = resolve_checkpoint(args.checkpoint)  # a run folder: its best.pt, else last.pt
    sample, state = handler_for(SAMPLERS, args.checkpoint, "sample")
    return sample(args, state)


def sample_cnf(args: argparse.Namespace, state) -> int:
    from ..tasks.cnf2d import load_flow

    flow, _ = load_flow(args.checkpoint)
    return write_flow_samples(flow, args)


def write_flow_samples(
    flow,
    args: argparse.Namespace,
    columns: Optional[List[str]] = None,
    to_units: Optional[Callable[[Any], Any]] = None,
) -> int:
    """x = f^-1(z), z ~ N(0, I) with the chosen (or trained) solver, to .csv/.npy; --plot draws the
    first two coordinates. Shared by every flow task (cnf, tabular). ``to_units`` maps the model's
    coordinates to the data's (a user's table), ``columns`` names the CSV's columns (default x0, x1, ...)."""
    import numpy as np
    import torch

    if args.out.suffix not in (".csv", ".npy"):
        raise ValueError(f"--out must end in .csv or .npy; got {args.out}")
    if args.out.is_dir():
        raise ValueError(f"--out {args.out} is a folder; give a file name such as {args.out / 'samples.csv'}")
    solver = chosen_solver(args)
    if solver is not None:
        flow.set_solver(*solver)
    with torch.no_grad():
        x = flow.sample(args.n, generator=torch.Generator().manual_seed(args.seed)).double().numpy()
    if to_units is not None:
        x = to_units(x)
    names = columns if columns is not None and len(columns) == x.shape[1] else [f"x{i}" for i in range(x.shape[1])]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix == ".npy":
        np.save(args.out, x)
    else:
        import csv

        with args.out.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(names)
            writer.writerows([repr(float(v)) for v in row] for row in x)
    if args.plot is not None:
        from ..plotting import plot_samples

        plot_samples(x[:, :2], args.plot)
    blocks = getattr(flow, "cnfs", [flow])
    nfe = sum(int(getattr(getattr(b, "last_stats", None), "nfe", 0)) for b in blocks)
    method = getattr(blocks[0], "method", "solver")
    print(
        f"wrote {args.n} samples ({x.shape[1]} dimensions) to {args.out}"
        + (f" and {args.plot}" if args.plot else "")
        + f" ({method}, NFE {nfe})"
    )
    return 0
