"""The memory plan of the multiscale image CNF (`odeflow train image`): on tiny random images the
plan follows the budget (plain -> checkpointed segments -> adjoint), the checkpointed step gives
the plain step's gradients and stays under its prediction, and the bits/dim evaluation chunk
shrinks with the budget without changing the per-image values."""

import pytest
import torch

from odeflow.flows.image_transforms import dequantize
from odeflow.flows.memory import MB, LiveTensorBytes
from odeflow.flows.memory_plan import apply_plan, plan_eval_chunk, plan_training_memory
from odeflow.flows.multiscale import MultiscaleCNF
from odeflow.solvers.stepping import FixedStep


def _flow(channels, size, hidden, steps=4):
    torch.manual_seed(0)
    return MultiscaleCNF(
        (channels, size, size), hidden=hidden, step=FixedStep(steps=steps), zero_init=False, kinetic=0.01, jacobian=0.01
    ).double()


def _images(n, channels, size, seed):
    g = torch.Generator().manual_seed(seed)
    return dequantize(torch.randint(0, 256, (n, channels, size, size), generator=g, dtype=torch.uint8), g).double()


def _grads_and_peak(flow, x):
    torch.manual_seed(3)  # the same Hutchinson noise for every gradient mode
    meter = LiveTensorBytes()
    with meter:
        flow.loss(x)[0].backward()
    grads = [p.grad.clone() for p in flow.parameters()]
    for p in flow.parameters():
        p.grad = None
    return grads, meter.peak


@pytest.mark.parametrize("channels, size, hidden, seed", [(1, 4, (6, 6), 0), (2, 4, (4,), 1)])
def test_image_plan_follows_the_budget(channels, size, hidden, seed):
    flow = _flow(channels, size, hidden, steps=4)
    x = _images(48, channels, size, seed)
    plain = plan_training_memory(flow, x[:32], 48, 10**12, 0)
    assert plain.strategy == "plain" and plain.steps_per_block == 4
    reference, plain_peak = _grads_and_peak(flow, x)
    tight = int(plain.plain_mb * MB * 0.6)
    plan = plan_training_memory(flow, x[:32], 48, tight, 0)
    assert plan.strategy == "checkpointed" and 1 <= plan.segment_steps < 4 and plan.predicted_mb * MB <= tight
    apply_plan(flow, plan)
    grads, peak = _grads_and_peak(flow, x)
    assert peak <= plan.predicted_mb * MB and peak < plain_peak
    for g, r in zip(grads, reference):
        torch.testing.assert_close(g, r, rtol=1e-9, atol=1e-12)
    one_seg = plan_training_memory(flow, x[:32], 48, 10**12, 0, strategy="checkpointed")
    adjoint = plan_training_memory(flow, x[:32], 48, 10**12, 0, strategy="adjoint")
    assert adjoint.predicted_mb < one_seg.predicted_mb
    squeezed = plan_training_memory(flow, x[:32], 48, int(adjoint.predicted_mb * MB * 1.01), 0)
    assert squeezed.strategy == "adjoint"
    apply_plan(flow, squeezed)
    assert all(b.adjoint for b in flow.cnfs)
    grads, _ = _grads_and_peak(flow, x)  # another gradient, but of the same loss: close
    cos = (
        sum(float((g * r).sum()) for g, r in zip(grads, reference))
        / (sum(float((g * g).sum()) for g in grads) * sum(float((r * r).sum()) for r in reference)) ** 0.5
    )
    assert cos > 0.99


def test_bits_per_dim_chunk_shrinks_with_the_budget_and_keeps_the_values():
    flow = _flow(1, 4, (8, 8))
    flow.set_solver("dopri5", FixedStep(steps=2))
    for b in flow.cnfs:
        b.divergence = "exact"  # deterministic values, so the chunks can be compared
    x = _images(120, 1, 4, 5)
    bpd = lambda f, images: f.bits_per_dim(images)  # noqa: E731
    big = plan_eval_chunk(flow, x[:32], 10**12, 0, 500, bpd, "dopri5")
    budget = 4 * MB  # about 30 of the 120 images per chunk
    small = plan_eval_chunk(flow, x[:32], budget, 0, 500, bpd, "dopri5")
    assert big == 500 and 1 <= small < 120
    meter = LiveTensorBytes()
    with torch.no_grad(), meter:
        parts = torch.cat([flow.bits_per_dim(x[i : i + small]) for i in range(0, 120, small)])
    assert meter.peak - x.numel() * 8 <= budget
    with torch.no_grad():
        whole = flow.bits_per_dim(x)
    torch.testing.assert_close(parts, whole, rtol=1e-10, atol=1e-12)
