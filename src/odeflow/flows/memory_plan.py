"""Memory planned like time: measure one training step of a CNF, then pick how gradients flow
so that the peak fits a budget (docs/design.md; `--max-memory`).

Discretize-optimize keeps the graph of every stage of every step: memory grows with
batch x steps x blocks (BSDS300's config, 2 blocks x 40 rk4 steps x batch 500, needs about 9 GB
of tensors). Three ways to run a step, cheapest in time first:

    plain         the whole graph:                     peak(b, n_blocks * n_steps)
    checkpointed  segments of s steps, recomputed in the backward pass (about one extra
                  forward evaluation per stage):        peak(b, s) + boundary states
    adjoint       optimize-discretize on the same grid: peak(b, 1)   (another gradient)

The footprint is measured, not guessed: `LiveTensorBytes` counts the tensor bytes of a
training step with 1 and 2 steps per block at a probe batch b0 and with 1 step at 2 b0, which
fixes the linear model (graph after the forward pass exact; backward transient fitted)

    peak(b, n) = fixed + b * (per_row + n * per_row_step)     (n: steps whose graph is alive).

Validation and test use the exact trace without gradients; their chunk size comes from the
same kind of probe (`plan_eval_chunk`).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from ..solvers.stepping import FixedStep
from .cnf import CNF, CNFStack, StepControl, standard_normal_logprob
from .memory import GB, MB, LiveTensorBytes

if TYPE_CHECKING:
    from .multiscale import MultiscaleCNF

# Allocator slack over the counted tensor bytes. CPU: glibc's heap fragments under the repeated
# large allocations of a training step; resident memory settled at 2.0-2.3x the counted peak
# (MINIBOONE's net, batch 2000 and 5000, through the Trainer; docs/tabular.md). CUDA: the
# caching allocator's reserved memory over the allocated peak.
SAFETY_BY_DEVICE = {"cpu": 2.5, "cuda": 1.25}
SAFETY = SAFETY_BY_DEVICE["cpu"]


def safety(device: torch.device) -> float:
    return SAFETY_BY_DEVICE.get(device.type, SAFETY)


ADAM_STATE = 2  # Adam keeps two tensors per parameter (the gradients are in the probe)
STRATEGIES = ("auto", "plain", "checkpointed", "adjoint")

Flow = Union[CNF, CNFStack, "MultiscaleCNF"]


def blocks_of(flow: Flow) -> List[CNF]:
    """The CNF blocks of a stack, a multiscale image flow (its `cnfs`), or a single CNF."""
    if isinstance(flow, CNFStack):
        return flow.cnfs
    if isinstance(flow, CNF):
        return [flow]
    return list(flow.cnfs)


@dataclass(frozen=True)
class StepFootprint:
    """peak(b, n) = fixed + b * (per_row + n * per_row_step) bytes, n = steps kept in the graph."""

    fixed: float
    per_row: float
    per_row_step: float

    def peak(self, batch: int, kept_steps: int) -> float:
        return self.fixed + batch * (self.per_row + kept_steps * self.per_row_step)


@dataclass(frozen=True)
class MemoryPlan:
    strategy: str  # plain, checkpointed or adjoint
    segment_steps: Optional[int]  # checkpointed: steps per segment
    steps_per_block: int  # fixed steps per block of the finest training solver (estimated if adaptive)
    predicted_mb: float  # predicted peak of the process (in use + step), MB
    plain_mb: float  # what the plain step would need, MB
    budget_mb: float
    reason: str

    def describe(self) -> str:
        what = {
            "plain": "plain discretize-optimize (whole graph kept)",
            "checkpointed": f"checkpointed discretize-optimize, segments of {self.segment_steps} step(s)",
            "adjoint": "the continuous adjoint (optimize-discretize)",
        }[self.strategy]
        return f"memory plan: {what}; {self.reason}"

    def as_dict(self) -> Dict[str, object]:
        return asdict(self)


@contextmanager
def _probe_settings(blocks: Sequence[CNF], method: str, step: StepControl, adjoint: bool = False) -> Iterator[None]:
    saved = [(b.method, b.step, b.adjoint, b.checkpoints, b.segment_steps) for b in blocks]
    try:
        for b in blocks:
            b.method, b.step, b.adjoint, b.checkpoints, b.segment_steps = method, step, adjoint, None, None
        yield
    finally:
        for b, (m, s, a, c, g) in zip(blocks, saved):
            b.method, b.step, b.adjoint, b.checkpoints, b.segment_steps = m, s, a, c, g


def _step_bytes(flow: Flow, x: Tensor, loss: Callable[[Flow, Tensor], Tensor]) -> Tuple[int, int]:
    """(tensor bytes alive at the end of the forward pass, peak bytes) of loss(flow, x).backward();
    the gradients are reset afterwards."""
    params = [p for p in flow.parameters() if p.requires_grad]
    saved = [p.grad for p in params]
    for p in params:
        p.grad = None
    meter = LiveTensorBytes()
    try:
        with meter:
            value = loss(flow, x)
            forward = meter.current
            value.backward()
            del value
    finally:
        for p, g in zip(params, saved):
            p.grad = g
    return forward, meter.peak


def default_loss(flow: Flow, x: Tensor) -> Tensor:
    return flow.loss(x)[0]


def measure_step(
    flow: Flow, x: Tensor, method: str, loss: Callable[[Flow, Tensor], Tensor] = default_loss
) -> StepFootprint:
    """The linear footprint model from three probes of a training step with `method` and plain
    Disc-Opt: 1 and 2 fixed steps per block at b0 = len(x) // 2 rows, 1 step at 2 b0 rows.

    The graph alive after the forward pass is exactly linear in rows x steps (slope
    per_row_step); the backward pass adds a transient (gradients, weight-sized temporaries,
    the last step's double-backward buffers) that is fitted as fixed + rows * slope."""
    blocks = blocks_of(flow)
    b0 = max(1, x.shape[0] // 2)
    with _probe_settings(blocks, method, FixedStep(steps=1)):
        f11, p11 = _step_bytes(flow, x[:b0], loss)
        f21, p21 = _step_bytes(flow, x[: 2 * b0], loss)
    with _probe_settings(blocks, method, FixedStep(steps=2)):
        f12, _ = _step_bytes(flow, x[:b0], loss)
    k = len(blocks)
    per_step = max(0.0, (f12 - f11) / (k * b0))
    fwd_row = max(0.0, (f21 - f11) / b0 - k * per_step)
    t11, t21 = p11 - f11, p21 - f21
    t_row = max(0.0, (t21 - t11) / b0)
    fixed = max(0.0, t11 - b0 * t_row) + max(0.0, f11 - b0 * (fwd_row + k * per_step))
    return StepFootprint(fixed, fwd_row + t_row, per_step)


def steps_per_block(block: CNF, step: StepControl, x: Tensor, method: str) -> int:
    """Fixed steps on [0, T]; for adaptive steps, the steps of one solve of x (no gradient)."""
    if isinstance(step, FixedStep):
        return sum(step.substeps([0.0, float(block.T.detach())]))
    with _probe_settings([block], method, step), torch.no_grad():
        block.push_forward(x)
    return max(1, block.last_stats.steps)


def plan_training_memory(
    flow: Flow,
    x_probe: Tensor,
    batch: int,
    budget_bytes: int,
    in_use_bytes: int,
    solvers: Sequence[tuple] = (),
    strategy: str = "auto",
    loss: Callable[[Flow, Tensor], Tensor] = default_loss,
) -> MemoryPlan:
    """Choose plain / checkpointed / adjoint for training `flow` on batches of `batch` rows.

    solvers: (method, step) of every training stage (default: the blocks' own). The plan is
    made for the stage with the most steps; checkpointing needs fixed steps in every stage.
    A flow built with adjoint=True (opt-disc) keeps the adjoint. Raises ValueError when even
    the adjoint does not fit, naming the largest batch that would."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown memory strategy {strategy!r}; valid: {', '.join(STRATEGIES)}")
    blocks = blocks_of(flow)
    solvers = list(solvers) or [(blocks[0].method, blocks[0].step)]
    method = solvers[0][0]
    fp = measure_step(flow, x_probe, method, loss)
    n = max(steps_per_block(blocks[0], step, x_probe, m) for m, step in solvers)
    fixed_steps = all(isinstance(step, FixedStep) and step.grid is None for _, step in solvers)
    n_params = sum(p.numel() * p.element_size() for p in flow.parameters() if p.requires_grad)
    base = in_use_bytes + ADAM_STATE * n_params
    slack = safety(x_probe.device)
    total = lambda kept, extra=0.0: base + slack * (fp.peak(batch, kept) + extra)  # noqa: E731
    state_row = (max(b.dim for b in blocks) + 3) * x_probe.element_size()
    plain, adjoint = total(len(blocks) * n), total(1)
    mb = lambda v: v / MB  # noqa: E731

    def done(kind: str, seg: Optional[int], value: float, reason: str) -> MemoryPlan:
        if strategy != "auto":
            reason = (
                f"asked for ({strategy}); predicted peak {value / GB:.2f} GB, the plain step "
                f"{plain / GB:.2f} GB, budget {budget_bytes / GB:.2f} GB"
            )
        return MemoryPlan(kind, seg, n, mb(value), mb(plain), mb(budget_bytes), reason)

    budget_text = f"budget {budget_bytes / GB:.2f} GB"
    if blocks[0].adjoint:
        if adjoint > budget_bytes and strategy == "auto":
            raise ValueError(_too_big(fp, base, budget_bytes, batch, "the adjoint", slack))
        return done(
            "adjoint",
            None,
            adjoint,
            f"opt-disc: memory does not grow with the steps (predicted peak {adjoint / GB:.2f} GB, {budget_text})",
        )
    if strategy == "plain" or (strategy == "auto" and plain <= budget_bytes):
        return done(
            "plain",
            None,
            plain,
            f"the whole graph ({len(blocks)} block(s) x {n} steps, batch {batch}) "
            f"needs a predicted {plain / GB:.2f} GB, within the {budget_text}",
        )
    if strategy == "checkpointed" and not fixed_steps:
        raise ValueError(
            "memory plan 'checkpointed' needs fixed steps in every stage (--step-size or --n-steps); "
            "use 'auto' or 'adjoint' with adaptive steps"
        )
    if fixed_steps and strategy in ("auto", "checkpointed"):
        for seg in range(n, 0, -1):
            segments = math.ceil(n / seg)
            # + one copy of the parameter gradients: each segment returns its own before accumulation
            need = total(seg, len(blocks) * segments * batch * state_row + n_params)
            if need <= budget_bytes or (strategy == "checkpointed" and seg == 1):
                return done(
                    "checkpointed",
                    seg,
                    need,
                    f"the plain step would need {plain / GB:.2f} GB (over the {budget_text}); segments of "
                    f"{seg} of the {n} steps need {need / GB:.2f} GB, for about one extra forward "
                    "evaluation per stage",
                )
    if strategy in ("auto", "adjoint") and (adjoint <= budget_bytes or strategy == "adjoint"):
        why = "even segments of one step do not fit" if fixed_steps else "adaptive steps cannot be checkpointed"
        return done(
            "adjoint",
            None,
            adjoint,
            f"the plain step would need {plain / GB:.2f} GB and {why} in the {budget_text}: the gradient "
            f"comes from the continuous adjoint on the same solver instead ({adjoint / GB:.2f} GB)",
        )
    raise ValueError(_too_big(fp, base, budget_bytes, batch, "segments of one step or the adjoint", slack))


def _too_big(fp: StepFootprint, base: float, budget: int, batch: int, what: str, slack: float) -> str:
    room = (budget - base) / slack - fp.fixed
    fits = int(room // (fp.per_row + fp.per_row_step)) if room > 0 else 0
    if fits < 1:  # not even one row: only a larger budget helps
        one_row = base + slack * (fp.fixed + fp.per_row + fp.per_row_step)
        return (
            f"the memory budget of {budget / GB:.3g} GB (--max-memory) is too small for even one row with {what} "
            f"(in use already {base / GB:.3g} GB); raise --max-memory to at least {one_row / GB:.3g} GB"
        )
    return (
        f"batch {batch} does not fit in the memory budget of {budget / GB:.2f} GB even with {what} "
        f"(in use already {base / GB:.2f} GB); use --batch {fits} or less, or raise --max-memory"
    )


def apply_plan(flow: Flow, plan: MemoryPlan) -> None:
    """Set every block's gradient mode to the plan's."""
    for b in blocks_of(flow):
        b.checkpoints = None
        b.segment_steps = plan.segment_steps if plan.strategy == "checkpointed" else None
        b.adjoint = plan.strategy == "adjoint"


def exact_log_prob(flow: Flow, x: Tensor) -> Tensor:
    """log p(x) with the exact trace in every block (the tabular evaluation)."""
    blocks = blocks_of(flow)
    saved = [b.divergence for b in blocks]
    try:
        for b in blocks:
            b.divergence = "exact"
        z, logdet = flow.transform(x)
        return standard_normal_logprob(z) - logdet
    finally:
        for b, d in zip(blocks, saved):
            b.divergence = d


def plan_eval_chunk(
    flow: Flow,
    x_probe: Tensor,
    budget_bytes: int,
    in_use_bytes: int,
    max_chunk: int,
    evaluate: Callable[[Flow, Tensor], Tensor] = exact_log_prob,
    method: str = "rk4",
) -> int:
    """Rows per chunk for evaluation without gradients within the budget: the peak of one
    `evaluate` (default: the exact-trace log-density) with one step of `method` per block at c0
    and 2 c0 rows fixes peak(c) = e0 + c * e_row. Without a graph the peak does not grow with the
    number of steps, only with the method's stages."""
    blocks = blocks_of(flow)
    c0 = max(1, x_probe.shape[0] // 2)

    def one(x: Tensor) -> int:
        meter = LiveTensorBytes()
        with _probe_settings(blocks, method, FixedStep(steps=1)), torch.no_grad(), meter:
            evaluate(flow, x)
        return meter.peak

    p1, p2 = one(x_probe[:c0]), one(x_probe[: 2 * c0])
    e_row = max(1.0, (p2 - p1) / c0)
    e0 = max(0.0, p1 - c0 * e_row)
    room = (budget_bytes - in_use_bytes) / safety(x_probe.device) - e0
    return int(max(1, min(max_chunk, room // e_row)))
