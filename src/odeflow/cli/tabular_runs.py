"""`odeflow evaluate` and `odeflow sample` for runs of `odeflow train tabular` (checkpoint kind
'tabular', registered in cli/checkpoint_kinds.py); each function gets (args, loaded checkpoint)."""

from __future__ import annotations

import argparse
import json
from typing import Any, Dict

from .solver_options import chosen_solver, describe_step


def evaluate_tabular(args: argparse.Namespace, state: Dict[str, Any]) -> int:
    """Test NLL (exact trace, or Hutchinson's with --eval-probes and a standard error), inverse
    error and NFE-F on the first --n rows of the test split, with the trained solver or the one
    given (re-discretization)."""
    import torch

    from ..data.tabular import load_tabular
    from ..flows.evaluation import evaluate_density
    from ..tasks.tabular import DTYPES, tabular_flow_from_state
    from .evaluate import density_options, trace_words

    flow, cfg = tabular_flow_from_state(state, args.checkpoint)
    if args.data is not None and args.data != cfg.data:
        raise ValueError(f"--data {args.data}: this run was trained on {cfg.data!r}; omit --data for tabular runs")
    data = load_tabular(cfg.data, cfg.data_dir, seed=cfg.seed)
    x = torch.tensor(data.test[: args.n], dtype=DTYPES[cfg.dtype])
    first: Any = flow.blocks[0]
    method, step = chosen_solver(args) or (first.method, first.step)
    result = dict(
        checkpoint=str(args.checkpoint),
        data=cfg.data,
        n=int(x.shape[0]),
        method=method,
        step=describe_step(step),
        **evaluate_density(flow, x, method, step, chunk=cfg.eval_chunk, **density_options(args)),
    )
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{cfg.data} test (n={result['n']}) with {method} {describe_step(step)}: NLL {result['nll']:.4f} nats "
            f"({trace_words(result)}), inverse error {result['inverse_error']:.2e}, NFE-F {result['nfe']:.0f}"
        )
    return 0


def sample_tabular(args: argparse.Namespace, state: Dict[str, Any]) -> int:
    """Samples (.csv or .npy); --plot draws the first two columns. A run on the user's own table
    writes them in the table's units and column names (x = mean + std * x_model); the standard
    datasets in their preprocessed coordinates."""
    import numpy as np

    from ..tasks.tabular import tabular_flow_from_state
    from .sample import write_flow_samples

    flow, _ = tabular_flow_from_state(state, args.checkpoint)
    units = (state.get("task") or {}).get("units") or {}
    if not units:
        return write_flow_samples(flow, args)
    mean, std = np.asarray(units["mean"], dtype=np.float64), np.asarray(units["std"], dtype=np.float64)
    return write_flow_samples(flow, args, columns=list(units["columns"]), to_units=lambda x: mean + std * x)
