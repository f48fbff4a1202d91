"""What every task that trains a CNF does about memory: the budget (--max-memory GB, default a
safe fraction of the free memory), the plan for the training step (plain / checkpointed
Disc-Opt / adjoint, `flows.memory_plan`), the chunk size of exact-trace evaluation, and the
process's peak for summary.json (`peak_memory_mb`)."""

from __future__ import annotations

import sys
from typing import Any, Callable, Dict, Optional, Sequence

import torch
from torch import Tensor

from ..flows.memory import MB, budget_bytes, in_use_bytes, process_peak_bytes
from ..flows.memory_plan import Flow, MemoryPlan, apply_plan, exact_log_prob, plan_eval_chunk, plan_training_memory
from ..training import RunContext

PROBE_ROWS = 32  # rows of the probe batch (two probes at half of it)


def note(ctx: RunContext, message: str) -> None:
    """A line for the user on stderr (rank 0, not with --quiet)."""
    if ctx.is_main and not ctx.quiet:
        print(message, file=sys.stderr, flush=True)


def plan_memory(
    flow: Flow,
    x_probe: Tensor,
    batch: int,
    ctx: RunContext,
    max_memory: Optional[float],
    strategy: str = "auto",
    solvers: Sequence[tuple] = (),
    max_chunk: Optional[int] = 1024,
    evaluate: Callable[[Flow, Tensor], Tensor] = exact_log_prob,
    eval_method: str = "rk4",
    eval_what: str = "exact-trace evaluation",
) -> Dict[str, Any]:
    """Plan and apply the training step's gradient mode and (unless max_chunk is None) the
    chunk of `evaluate` (default the exact-trace log-density) without gradients; say why. Returns
    the record for summary.json's `memory`."""
    budget, source = budget_bytes(max_memory, ctx.device)
    in_use = in_use_bytes(ctx.device)
    # The probes draw Hutchinson noise: keep them off the run's random stream, so that a run
    # trains the same with or without a plan (and as before plans existed).
    devices = [ctx.device] if ctx.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        plan: MemoryPlan = plan_training_memory(flow, x_probe[:PROBE_ROWS], batch, budget, in_use, solvers, strategy)
        chunk = (
            None
            if max_chunk is None
            else plan_eval_chunk(flow, x_probe[:PROBE_ROWS], budget, in_use, max_chunk, evaluate, eval_method)
        )
    apply_plan(flow, plan)
    if chunk is None:
        note(ctx, f"{plan.describe()} [{source}]")
        return dict(plan.as_dict(), budget_source=source)
    note(ctx, f"{plan.describe()} [{source}]; {eval_what} in chunks of {chunk} rows")
    return dict(plan.as_dict(), budget_source=source, eval_chunk=chunk)


def peak_memory_mb(device: torch.device) -> float:
    """The process's peak (CUDA: peak allocated GPU memory; CPU: peak resident memory), MB."""
    return process_peak_bytes(device) / MB
