"""CNF evaluation with every row on its own adaptive steps: each row's (z, l) and step counts are
those of the row solved alone with the shared-step solver (float64, random stacked CNFs)."""

from __future__ import annotations

import pytest
import torch

from odeflow.flows.evaluation import evaluate_density
from odeflow.flows.per_sample_eval import transform_per_sample
from odeflow.flows.stacked import StackSpec, build_stacked_cnf, nll_per_sample
from odeflow.solvers.stepping import Adaptive, FixedStep

F64 = torch.float64


def _flow(seed: int, divergence: str = "exact"):
    gen = torch.Generator().manual_seed(seed)
    dim = int(torch.randint(2, 6, (1,), generator=gen))
    blocks = int(torch.randint(1, 3, (1,), generator=gen))
    torch.manual_seed(seed)
    flow = build_stacked_cnf(
        dim,
        StackSpec(blocks=blocks, layers=2, multiplier=3, activation="tanh"),
        method="dopri5",
        step=Adaptive(1e-6, 1e-8),
        divergence=divergence,
    ).to(F64)
    with torch.no_grad():
        for p in flow.parameters():
            p.normal_(0.0, 0.4, generator=gen)
    x = torch.randn(6, dim, generator=gen, dtype=F64) * (0.5 + 2 * torch.rand(6, 1, generator=gen, dtype=F64))
    return flow, x


@pytest.mark.parametrize("seed,compact", [(0, 0.0), (1, 0.5), (2, 0.0), (3, 0.5)])
def test_each_row_equals_the_row_alone(seed: int, compact: float) -> None:
    flow, x = _flow(seed)
    z, logdet = transform_per_sample(flow, x, compact)
    accepted = [b.last_stats.per_sample.accepted.clone() for b in flow.cnfs]  # type: ignore[attr-defined]
    assert len({int(a) for a in accepted[0]}) > 1  # the rows really take different steps
    with torch.no_grad():
        for i in range(x.shape[0]):
            row = x[i : i + 1]
            for k, block in enumerate(flow.cnfs):
                row_next, l_row = block.transform(row)
                assert block.last_stats.accepted == int(accepted[k][i])
                row = row_next
            za, la = flow.transform(x[i : i + 1])
            torch.testing.assert_close(z[i], za[0], rtol=0, atol=1e-9)
            torch.testing.assert_close(logdet[i], la[0], rtol=0, atol=1e-9)


def test_nll_and_density_evaluation_per_sample_agree_with_the_shared_step() -> None:
    flow, x = _flow(4)
    step = Adaptive(1e-8, 1e-10)
    shared = nll_per_sample(flow, x, "dopri5", step, chunk=4)
    rows = nll_per_sample(flow, x, "dopri5", step, chunk=4, per_sample=True)
    torch.testing.assert_close(rows, shared, rtol=0, atol=1e-6)
    a = evaluate_density(flow, x, "dopri5", step, chunk=4)
    b = evaluate_density(flow, x, "dopri5", step, chunk=4, per_sample=True)
    assert abs(a["nll"] - b["nll"]) < 1e-6 and b["nfe"] > 0


def test_hutchinson_per_sample_is_unbiased_for_the_exact_nll() -> None:
    """Per-row Hutchinson estimates average to the exact per-sample NLL (within 5 standard errors)."""
    flow, x = _flow(5, divergence="hutchinson")
    torch.manual_seed(0)
    step = Adaptive(1e-5, 1e-7)
    exact = nll_per_sample(flow, x, "dopri5", step, per_sample=True)
    draws = torch.tensor(
        [
            evaluate_density(flow, x, "dopri5", step, "hutchinson", inverse=False, per_sample=True)["nll"]
            for _ in range(30)
        ]
    )
    assert float(draws.std()) > 0  # the probes are really drawn
    se = float(draws.std() / 30**0.5)
    assert abs(float(draws.mean()) - float(exact.mean())) < 5 * se + 1e-6


def test_fixed_steps_are_refused() -> None:
    flow, x = _flow(0)
    with pytest.raises(ValueError, match="adaptive step"):
        nll_per_sample(flow, x, "rk4", FixedStep(0.1), per_sample=True)
