"""`odeflow evaluate`: test NLL or bits/dim (exact trace, or Hutchinson's estimate with K probes and its
standard error), inverse error and NFE of a trained CNF with any solver."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Optional

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
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the test sample (cnf runs: default 20000); image runs: of the dequantization noise "
        "(default: the noise of the run's own test evaluation in summary.json)",
    )
    p.add_argument(
        "--eval-divergence",
        choices=["exact", "hutchinson"],
        default=None,
        help="cnf, tabular and image runs: the trace, exact or Hutchinson's unbiased estimate with a standard "
        "error (default: exact for cnf and tabular runs; hutchinson for image runs, where the exact trace "
        "costs one VJP per pixel per step)",
    )
    p.add_argument(
        "--eval-probes", type=int, default=1, help="with --eval-divergence hutchinson: probes per row (default 1)"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


DENSITY_KINDS = ("cnf", "tabular", "image")  # the runs whose evaluation takes --eval-divergence / --eval-probes
DEFAULT_DIVERGENCE = {"image": "hutchinson"}  # the others: exact


def run(args: argparse.Namespace) -> int:
    from .checkpoint_kinds import EVALUATORS, handler_for, resolve_checkpoint

    args.checkpoint = resolve_checkpoint(args.checkpoint)
    evaluate, state = handler_for(EVALUATORS, args.checkpoint, "evaluate")
    if getattr(args, "eval_divergence", None) is None:
        args.eval_divergence = DEFAULT_DIVERGENCE.get(str(state.get("kind")), "exact")
    check_eval_options(args, state.get("kind"))
    return evaluate(args, state)


def check_eval_options(args: argparse.Namespace, kind: Any) -> None:
    """Raise ValueError for --eval-divergence / --eval-probes that cannot apply."""
    divergence, probes = getattr(args, "eval_divergence", None) or "exact", getattr(args, "eval_probes", 1)
    if kind not in DENSITY_KINDS and (divergence != "exact" or probes != 1):
        raise ValueError(
            f"--eval-divergence/--eval-probes apply to {', '.join(DENSITY_KINDS)} runs; this checkpoint holds "
            f"a {kind!r} run: drop them"
        )
    if probes < 1:
        raise ValueError(f"--eval-probes must be >= 1; got {probes}")
    if divergence == "exact" and probes != 1:
        raise ValueError("--eval-probes applies to the Hutchinson estimate: add --eval-divergence hutchinson")


def density_options(args: argparse.Namespace) -> Dict[str, Any]:
    """evaluate_density's divergence, probes and (unless --quiet) the time-per-1,000-rows line on stderr."""
    announce: Optional[Callable[[str], None]] = None
    if not args.quiet:
        announce = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    return dict(divergence=args.eval_divergence, probes=args.eval_probes, announce=announce)


def trace_words(result: Dict[str, Any]) -> str:
    """'exact trace' or 'Hutchinson, K probes, ± se' for the printed line."""
    if result["divergence"] == "exact":
        return "exact trace"
    return f"Hutchinson, {result['probes']} probe(s), ± {result['nll_se']:.4f}"


def evaluate_cnf(args: argparse.Namespace, state) -> int:
    from ..data.toy2d import sample_toy
    from ..flows.evaluation import evaluate_density
    from ..tasks.cnf2d import load_flow

    flow, cfg = load_flow(args.checkpoint)
    data = args.data or cfg.data
    x = sample_toy(data, args.n, seed=20_000 if args.seed is None else args.seed)
    method, step = chosen_solver(args) or (flow.method, flow.step)
    result = dict(
        checkpoint=str(args.checkpoint),
        data=data,
        n=args.n,
        method=method,
        step=describe_step(step),
        **evaluate_density(flow, x, method, step, **density_options(args)),
    )
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{data} (n={args.n}) with {method} {describe_step(step)}: test NLL {result['nll']:.4f} nats "
            f"({trace_words(result)}), inverse error {result['inverse_error']:.2e}, NFE {result['nfe']:.0f}"
        )
    return 0
