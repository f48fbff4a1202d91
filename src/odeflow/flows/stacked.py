"""The stacked CNF of seed 000 §4.2.3 / Table 3 (FFJORD's tabular model).

    l(theta(t), y, t) = [ c_{m nf, nf} o (c_{m nf, m nf})^{nh - 1} o c_{nf, m nf} ]^s

Each of the s blocks (flow steps) is an ODE net of concatsquash layers: one layer nf -> m nf,
nh - 1 layers m nf -> m nf, one layer m nf -> nf, with the nonlinearity (tanh or softplus)
between layers; every block integrates its own CNF on [0, T]. So `layers` = nh hidden layers
of width `multiplier` * D.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, Iterator, Mapping, Optional

import torch
from torch import Tensor

from ..nn import ACTIVATIONS, LAYERS, ODENet, ReversedTime
from .cnf import CNF, CNFStack, StepControl, check_batch, standard_normal_logprob
from .per_sample_eval import transform_per_sample


@dataclass(frozen=True)
class StackSpec:
    """Architecture of a stacked CNF (one row of seed 000 Table 3)."""

    blocks: int = 1  # s, flow steps
    layers: int = 2  # nh, hidden layers per block
    multiplier: int = 10  # m, hidden width = m * D
    activation: str = "softplus"
    layer: str = "concatsquash"
    T: float = 1.0
    train_T: bool = False

    def __post_init__(self) -> None:
        for name in ("blocks", "layers", "multiplier"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"model.{name} must be a positive integer; got {value!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown model.activation {self.activation!r}; valid: {', '.join(sorted(ACTIVATIONS))}")
        if self.layer not in LAYERS:
            raise ValueError(f"unknown model.layer {self.layer!r}; valid: {', '.join(sorted(LAYERS))}")
        if not self.T > 0:
            raise ValueError(f"model.T must be > 0; got {self.T!r}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StackSpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown model keys {unknown}; valid: {', '.join(sorted(known))}")
        return cls(**dict(d))

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


def build_stacked_cnf(
    dim: int,
    spec: StackSpec,
    method: str = "rk4",
    step: Optional[StepControl] = None,
    adjoint: bool = False,
    divergence: str = "hutchinson",
    noise: str = "gaussian",
    seminorm: bool = False,
    net_time: str = "t",
) -> CNFStack:
    """`spec.blocks` CNF blocks on R^dim, each with the Table-3 ODE net; net_time 'reversed'
    feeds each block's net T - t (`ReversedTime`, a fixed T only)."""
    if not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be a positive integer; got {dim!r}")
    if net_time not in ("t", "reversed"):
        raise ValueError(f"unknown net_time {net_time!r}; valid: t, reversed")
    if net_time == "reversed" and spec.train_T:
        raise ValueError("net_time 'reversed' reads the net at T - t for a fixed T; drop train_T or net_time")
    hidden = [spec.multiplier * dim] * spec.layers

    def field() -> torch.nn.Module:
        net = ODENet(dim, hidden, layer=spec.layer, activation=spec.activation)
        return ReversedTime(net, spec.T) if net_time == "reversed" else net

    blocks = [
        CNF(
            field(),
            dim,
            T=spec.T,
            train_T=spec.train_T,
            divergence=divergence,
            noise=noise,
            method=method,
            step=step,
            adjoint=adjoint,
            seminorm=seminorm,
        )
        for _ in range(spec.blocks)
    ]
    return CNFStack(blocks)


@contextmanager
def using_solver(flow: CNFStack, method: str, step: StepControl) -> Iterator[CNFStack]:
    """Evaluate every block with another solver and the exact trace, without gradients; the
    blocks' own solver and divergence come back afterwards."""
    saved = [(b.method, b.step, b.divergence) for b in flow.cnfs]
    try:
        for b in flow.cnfs:
            b.set_solver(method, step)
            b.divergence = "exact"
        with torch.no_grad():
            yield flow
    finally:
        for b, (m, s, d) in zip(flow.cnfs, saved):
            b.method, b.step, b.divergence = m, s, d


def _chunks(x: Tensor, chunk: int, progress: Optional[str]) -> Iterator[Tensor]:
    """x in chunks of `chunk` rows, with a tqdm bar over the rows when `progress` names it."""
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1 rows; got {chunk}")
    if progress is None:
        yield from x.split(chunk)
        return
    from tqdm.auto import tqdm

    with tqdm(
        total=x.shape[0], desc=progress, unit="row", leave=False, file=sys.stderr, dynamic_ncols=True, mininterval=1.0
    ) as bar:
        for part in x.split(chunk):
            yield part
            bar.update(part.shape[0])


def nll_per_sample(
    flow: CNFStack,
    x: Tensor,
    method: str,
    step: StepControl,
    chunk: int = 1024,
    progress: Optional[str] = None,
    per_sample: bool = False,
) -> Tensor:
    """-log p(x) per sample (nats) with the exact trace and the given solver, streamed in chunks of
    `chunk` rows (only one chunk's evaluation is in memory at a time); ``per_sample``: each row on
    its own adaptive steps (`per_sample_eval`)."""
    check_batch(x, flow.dim)
    with using_solver(flow, method, step):
        parts = []
        for part in _chunks(x, chunk, progress):
            z, logdet = transform_per_sample(flow, part) if per_sample else flow.transform(part)
            parts.append(-(standard_normal_logprob(z) - logdet))
    return torch.cat(parts)


def evaluate_stack(
    flow: CNFStack,
    x: Tensor,
    method: str,
    step: StepControl,
    chunk: int = 1024,
    inverse: bool = True,
    progress: Optional[str] = None,
) -> Dict[str, float]:
    """Test NLL (nats, exact trace), inverse error mean_i ||f^-1(f(x_i)) - x_i||_2 and NFE-F
    (forward evaluations summed over the blocks, mean over chunks) with the given solver
    (re-discretization, seed 000 Table 5)."""
    check_batch(x, flow.dim)
    nll_sum, inv_sum, nfe = 0.0, 0.0, []
    with using_solver(flow, method, step):
        for part in _chunks(x, chunk, progress):
            z, logdet = flow.transform(part)
            nfe.append(sum(s.nfe for s in flow.nfe))
            nll_sum += float(-(standard_normal_logprob(z) - logdet).sum())
            if inverse:
                inv_sum += float((flow.inverse(z) - part).norm(dim=1).sum())
    n = x.shape[0]
    return dict(nll=nll_sum / n, inverse_error=inv_sum / n if inverse else float("nan"), nfe=float(sum(nfe)) / len(nfe))
