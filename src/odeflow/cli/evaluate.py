"""`odeflow evaluate`: test NLL (exact trace), inverse error and NFE of a trained CNF with any solver."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .solver_options import add_solver_options, chosen_solver, describe_step


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a trained run (CNF, tabular, classify, series classify, image), optionally re-discretized",
    )
    p.add_argument(
        "checkpoint",
        type=Path,
        help="a run folder (its best.pt) or best.pt / last.pt of a run (`odeflow train cnf`, ...)",
    )
    add_solver_options(p)
    p.add_argument("--data", default=None, help="toy dataset (default: the training one)")
    p.add_argument("--n", type=int, default=4096, help="number of test samples")
    p.add_argument("--seed", type=int, default=20_000, help="seed of the test sample")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .checkpoint_kinds import EVALUATORS, handler_for, resolve_checkpoint

    args.checkpoint = resolve_checkpoint(args.checkpoint)
    evaluate, state = handler_for(EVALUATORS, args.checkpoint, "evaluate")
    return evaluate(args, state)


def evaluate_cnf(args: argparse.Namespace, state) -> int:
    from ..data.toy2d import sample_toy
    from ..tasks.cnf2d import evaluate_flow, load_flow

    flow, cfg = load_flow(args.checkpoint)
    data = args.data or cfg.data
    x = sample_toy(data, args.n, seed=args.seed)
    method, step = chosen_solver(args) or (flow.method, flow.step)
    result = dict(
        checkpoint=str(args.checkpoint),
        data=data,
        n=args.n,
        method=method,
        step=describe_step(step),
        **evaluate_flow(flow, x, method, step),
    )
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{data} (n={args.n}) with {method} {describe_step(step)}: test NLL {result['nll']:.4f} nats, inverse error "
            f"{result['inverse_error']:.2e}, NFE {result['nfe']}"
        )
    return 0
