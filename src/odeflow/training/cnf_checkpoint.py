"""Rebuild a trained CNF from its checkpoint (best.pt / last.pt of `odeflow train cnf`)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Tuple

from ..flows import CNF
from .cnf import CNFConfig, build_flow
from .run_folder import load_checkpoint


def load_flow(path: Path) -> Tuple[CNF, CNFConfig]:
    """(flow in eval mode with the exact trace, its training config). Unknown or corrupt files
    raise a clear error; the solver is the training one until `flow.set_solver` changes it."""
    state = load_checkpoint(path)
    if state.get("kind") != "cnf":
        raise ValueError(f"checkpoint {path} holds a {state.get('kind', 'unknown')!r} model, not a CNF; "
                         "pass a best.pt or last.pt written by `odeflow train cnf`")
    known = {f.name for f in dataclasses.fields(CNFConfig)}
    cfg = CNFConfig(**{k: v for k, v in state["config"].items() if k in known})
    flow = build_flow(cfg)
    flow.load_state_dict(state["model"])
    flow.eval()
    flow.divergence = "exact"
    return flow, cfg
