"""The memory plan of a CNF training step: the measured footprint model predicts the peak of
larger steps, the plan picks plain / checkpointed / adjoint by the budget, checkpointed
gradients equal plain ones, and the evaluation chunk shrinks with the budget."""

import numpy as np
import pytest
import torch

from odeflow.flows.memory import MB, LiveTensorBytes
from odeflow.flows.memory_plan import SAFETY, apply_plan, measure_step, plan_eval_chunk, plan_training_memory
from odeflow.flows.stacked import StackSpec, build_stacked_cnf, nll_per_sample
from odeflow.solvers.stepping import Adaptive, FixedStep

CASES = [(3, 2, 8, 1), (5, 2, 6, 2), (7, 1, 10, 3)]  # (dim, blocks, multiplier, seed)


def _flow(dim, blocks, multiplier, steps=4, dtype=torch.float64):
    torch.manual_seed(0)
    spec = StackSpec(blocks=blocks, layers=2, multiplier=multiplier, activation="softplus", T=1.0)
    return build_stacked_cnf(dim, spec, method="rk4", step=FixedStep(steps=steps)).to(dtype)


def _peak(flow, x):
    meter = LiveTensorBytes()
    with meter:
        flow.loss(x)[0].backward()
    for p in flow.parameters():
        p.grad = None
    return meter.peak


@pytest.mark.parametrize("dim, blocks, multiplier, seed", CASES[::2])
def test_footprint_model_predicts_a_bigger_plain_step(dim, blocks, multiplier, seed):
    flow = _flow(dim, blocks, multiplier, steps=4)
    x = torch.randn(160, dim, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    fp = measure_step(flow, x[:32], "rk4")
    predicted, measured = fp.peak(160, blocks * 4), _peak(flow, x)
    assert 0.8 * measured <= predicted <= 1.3 * measured


@pytest.mark.parametrize("dim, blocks, multiplier, seed", CASES[1:])
def test_plan_follows_the_budget_and_checkpointed_fits(dim, blocks, multiplier, seed):
    flow = _flow(dim, blocks, multiplier, steps=6)
    x = torch.randn(128, dim, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    plain = plan_training_memory(flow, x[:32], 128, 10**12, 0)
    assert plain.strategy == "plain"
    tight = int(plain.plain_mb * MB * 0.6)
    plan = plan_training_memory(flow, x[:32], 128, tight, 0)
    assert plan.strategy == "checkpointed" and 1 <= plan.segment_steps <= 6 and plan.predicted_mb * MB <= tight
    apply_plan(flow, plan)
    assert _peak(flow, x) <= plan.predicted_mb * MB  # the measured peak stays under the prediction
    assert _peak(flow, x) < plain.plain_mb * MB / SAFETY  # and under the plain step's


def test_adjoint_when_segments_do_not_fit_and_an_error_naming_the_batch():
    flow = _flow(4, 3, 8, steps=4)
    x = torch.randn(64, 4, dtype=torch.float64)
    one_seg = plan_training_memory(flow, x[:32], 4096, 10**12, 0, strategy="checkpointed")
    adjoint = plan_training_memory(flow, x[:32], 4096, 10**12, 0, strategy="adjoint")
    assert adjoint.predicted_mb < one_seg.predicted_mb
    squeezed = plan_training_memory(flow, x[:32], 4096, int(adjoint.predicted_mb * MB * 1.01), 0)
    assert squeezed.strategy == "adjoint"
    with pytest.raises(ValueError, match=r"does not fit .* use --batch \d+ or less"):
        plan_training_memory(flow, x[:32], 4096, int(adjoint.predicted_mb * MB * 0.2), 0)
    flow.set_solver("dopri5", Adaptive(1e-3, 1e-3))
    with pytest.raises(ValueError, match="'checkpointed' needs fixed steps"):
        plan_training_memory(flow, x[:32], 64, 10**12, 0, strategy="checkpointed")


@pytest.mark.parametrize("segment_steps", [1, 3])
def test_checkpointed_gradients_equal_plain_ones(segment_steps):
    flow = _flow(4, 2, 4, steps=5)
    x = torch.randn(30, 4, dtype=torch.float64)

    def grads():
        torch.manual_seed(7)  # the same Hutchinson noise
        flow.loss(x)[0].backward()
        out = [p.grad.clone() for p in flow.parameters()]
        for p in flow.parameters():
            p.grad = None
        return out

    reference = grads()
    for b in flow.blocks:
        b.segment_steps = segment_steps
    for g, r in zip(grads(), reference):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)


def test_eval_chunk_shrinks_with_the_budget_and_chunks_do_not_change_the_nll():
    flow = _flow(6, 2, 4)
    x = torch.randn(300, 6, dtype=torch.float64)
    budget = MB // 4
    big = plan_eval_chunk(flow, x[:64], 10**12, 0, 4096)
    small = plan_eval_chunk(flow, x[:64], budget, 0, 4096)
    assert big == 4096 and 1 <= small < 300
    meter = LiveTensorBytes()
    with meter:
        parts = nll_per_sample(flow, x, "rk4", FixedStep(0.5), chunk=small, progress="test")
    assert meter.peak - x.shape[0] * 8 <= budget  # the streamed pass stays in the budget
    whole = nll_per_sample(flow, x, "rk4", FixedStep(0.5), chunk=300)
    np.testing.assert_allclose(parts.numpy(), whole.numpy(), rtol=1e-12)
