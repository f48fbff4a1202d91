"""Test-set evaluation of a CNF however it was trained (likelihood or flow matching).

log p(x) = log N(z(T); 0, I) + int_0^T tr(df/dz) dt  (instantaneous change of variables; Chen
et al. 2018, FFJORD). The trace is exact (D vector-Jacobian products per step) or Hutchinson's
e^T J e (one VJP). The trajectory z(t) does not depend on e, so with K independent probes per
row the mean of the K log-density estimates is unbiased; the reported standard error is the
sample standard deviation of the per-row estimates over sqrt(rows) (data and probe spread
together). Every result carries the solver and tolerance it was computed with, the NFE, the
inverse error mean ||f^-1(f(x)) - x||_2, and the measured time per 1,000 rows.

Image flows (`MultiscaleCNF`, x [B, C, H, W] in [0, 1]) go through the same code: their
`transform` includes the logit's log-determinant, and `image_bits_per_dim` turns the NLL and its
standard error into bits/dim of 8-bit data, bpd = NLL / (D ln 2) + 8 (a linear map, so the
standard error scales by 1 / (D ln 2)).
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Dict, List, Optional, Union, cast

import torch
from torch import Tensor

from ..solvers.stepping import Adaptive, FixedStep
from .cnf import CNF, CNFStack, StepControl, check_batch, standard_normal_logprob
from .image_transforms import bits_per_dim
from .multiscale import MultiscaleCNF
from .per_sample_eval import transform_per_sample

Flow = Union[CNF, CNFStack, MultiscaleCNF]

EVAL_DIVERGENCES = ("exact", "hutchinson")
TIMED_ROWS = 32  # rows timed first, to announce the time a long evaluation will take


def describe_solver(method: str, step: StepControl) -> str:
    """'dopri5 rtol=1e-05 atol=1e-05', 'rk4 h=0.05' or 'rk4 steps=4': recorded beside an NLL."""
    if isinstance(step, Adaptive):
        return f"{method} rtol={step.rtol:g} atol={step.atol:g}"
    if isinstance(step, FixedStep):
        if step.steps is not None:
            return f"{method} steps={step.steps}"
        if step.h is not None:
            return f"{method} h={step.h:g}"
    return f"{method} {step!r}"


def _blocks(flow: Flow) -> List[CNF]:
    return flow.cnfs if isinstance(flow, (CNFStack, MultiscaleCNF)) else [flow]


def evaluate_density(
    flow: Flow,
    x: Tensor,
    method: str,
    step: StepControl,
    divergence: str = "exact",
    probes: int = 1,
    chunk: int = 1024,
    inverse: bool = True,
    announce: Optional[Callable[[str], None]] = None,
    per_sample: bool = False,
) -> Dict[str, Any]:
    """NLL (nats, mean over rows) of x with its standard error, the solver used, NFE per solve,
    inverse error and seconds per 1,000 rows. ``announce`` receives a line with the time per
    1,000 rows and the expected total once the first TIMED_ROWS rows are done. ``per_sample``:
    every row on its own adaptive steps (`per_sample_eval`; NFE then counts batched evaluations)."""
    if divergence not in EVAL_DIVERGENCES:
        raise ValueError(f"unknown eval divergence {divergence!r}; valid: {', '.join(EVAL_DIVERGENCES)}")
    if not isinstance(probes, int) or probes < 1:
        raise ValueError(f"eval probes must be a positive integer; got {probes!r}")
    if divergence == "exact" and probes != 1:
        raise ValueError("eval probes apply to the Hutchinson estimate; use probes=1 with the exact trace")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1 rows; got {chunk}")
    if isinstance(flow, MultiscaleCNF):
        if per_sample:
            raise ValueError("per-sample evaluation applies to CNF and CNFStack flows, not to image flows")
        flow._check(x)
    else:
        check_batch(x, _blocks(flow)[0].dim)
    blocks = _blocks(flow)
    saved = [(b.method, b.step, b.divergence) for b in blocks]
    nll_rows: List[Tensor] = []
    inv_sum, nfe, seconds = 0.0, [], 0.0
    n = x.shape[0]
    first = min(n, TIMED_ROWS, chunk)
    pieces = [x[:first]] + list(x[first:].split(chunk)) if n > first else [x]
    try:
        for b in blocks:
            b.set_solver(method, step)
            b.divergence = divergence
        with torch.no_grad():
            for i, part in enumerate(pieces):
                start = time.perf_counter()
                draws = []
                for _ in range(probes):
                    z, logdet = (
                        transform_per_sample(cast(Union[CNF, CNFStack], flow), part)
                        if per_sample
                        else flow.transform(part)
                    )
                    nfe.append(sum(b.last_stats.nfe for b in blocks))
                    draws.append(-(standard_normal_logprob(z) - logdet))
                nll_rows.append(torch.stack(draws).mean(dim=0))
                if inverse:
                    inv_sum += float((flow.inverse(z) - part).flatten(1).norm(dim=1).sum())
                seconds += time.perf_counter() - start
                if i == 0 and announce is not None and n > first:
                    per_1000 = 1000 * seconds / first
                    announce(
                        f"evaluating {n} rows ({divergence} trace{f', {probes} probes' if divergence != 'exact' else ''}, "
                        f"{describe_solver(method, step)}): {per_1000:.1f} s per 1,000 rows, about "
                        f"{per_1000 * n / 1000:.0f} s in all"
                    )
    finally:
        for b, (m, s, d) in zip(blocks, saved):
            b.method, b.step, b.divergence = m, s, d
    rows = torch.cat(nll_rows)
    se = float(rows.std() / math.sqrt(n)) if n > 1 else float("nan")
    return dict(
        nll=float(rows.mean()),
        nll_se=se,
        divergence=divergence,
        probes=probes,
        solver=describe_solver(method, step),
        nfe=float(sum(nfe)) / len(nfe),
        inverse_error=inv_sum / n if inverse else float("nan"),
        seconds_per_1000_rows=1000 * seconds / n,
        rows=int(n),
    )


def image_bits_per_dim(result: Dict[str, Any], dims: int) -> Dict[str, Any]:
    """`evaluate_density`'s result of 8-bit images with bits_per_dim and bits_per_dim_se added."""
    out = dict(result)
    out["bits_per_dim"] = float(bits_per_dim(-result["nll"], dims))
    out["bits_per_dim_se"] = result["nll_se"] / (dims * math.log(2))
    return out
