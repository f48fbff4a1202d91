"""evaluate_density: exact against the CNF's own log_prob, Hutchinson unbiased within its
standard error, the solver recorded, the time announced (float64)."""

import pytest
import torch

import odeflow
from odeflow.flows import CNF, CNFStack, describe_solver, evaluate_density
from odeflow.nn import ODENet


def make_flow(dim, seed, blocks=1):
    torch.manual_seed(seed)
    cnfs = [CNF(ODENet(dim, (16, 16), activation="tanh"), dim, T=0.5, divergence="hutchinson") for _ in range(blocks)]
    flow = cnfs[0] if blocks == 1 else CNFStack(cnfs)
    return flow.double()


@pytest.mark.parametrize("seed,blocks", [(0, 1), (1, 2), (2, 1)])
def test_exact_evaluation_equals_log_prob_and_keeps_the_flow_settings(seed, blocks):
    flow = make_flow(3, seed, blocks)
    x = torch.randn(50, 3, dtype=torch.float64)
    step = odeflow.Adaptive(1e-8, 1e-8)
    lines = []
    r = evaluate_density(flow, x, "dopri5", step, chunk=16, announce=lines.append)
    cnfs = flow.cnfs if blocks > 1 else [flow]
    for b in cnfs:
        b.divergence = "exact"
        b.step = step
    with torch.no_grad():
        ref = -flow.log_prob(x)
    assert r["nll"] == pytest.approx(float(ref.mean()), abs=1e-7)  # chunks step adaptively on their own
    assert r["nll_se"] == pytest.approx(float(ref.std() / 50**0.5), rel=1e-6)
    assert r["solver"] == "dopri5 rtol=1e-08 atol=1e-08" and r["rows"] == 50 and r["inverse_error"] < 1e-6
    assert len(lines) == 1 and "per 1,000 rows" in lines[0]


def test_hutchinson_estimate_is_unbiased_within_its_standard_error():
    flow = make_flow(4, 3)
    for b in [flow]:
        b.divergence = "exact"
    x = torch.randn(1, 4, dtype=torch.float64).repeat(400, 1)  # one row, 400 independent probes
    step = odeflow.FixedStep(0.05)
    exact = evaluate_density(flow, x[:1], "rk4", step)["nll"]
    r = evaluate_density(flow, x, "rk4", step, divergence="hutchinson", probes=3)
    assert r["nll_se"] > 0
    assert abs(r["nll"] - exact) < 4 * r["nll_se"]
    assert flow.divergence == "exact"  # restored


def test_mistakes_are_clear():
    flow = make_flow(2, 0)
    x = torch.randn(4, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="probes"):
        evaluate_density(flow, x, "rk4", odeflow.FixedStep(0.1), probes=3)
    with pytest.raises(ValueError, match="divergence"):
        evaluate_density(flow, x, "rk4", odeflow.FixedStep(0.1), divergence="frobenius")
    assert describe_solver("rk4", odeflow.FixedStep(steps=4)) == "rk4 steps=4"
