"""LiveTensorBytes: exact high-water mark of the tensor bytes a block allocates, and budgets."""

import pytest
import torch

from odeflow.flows.memory import GB, LiveTensorBytes, budget_bytes, default_budget_bytes


@pytest.mark.parametrize("sizes", [(1000, 2000, 500), (17, 3, 4096), (250_000,)])
def test_peak_is_the_sum_of_live_tensors_and_frees_are_seen(sizes):
    meter = LiveTensorBytes()
    with meter:
        held = [torch.zeros(n, dtype=torch.float64) for n in sizes]
        peak = sum(8 * n for n in sizes)
        del held
        after = meter.current
        small = torch.ones(10, dtype=torch.float32)
    assert meter.peak == peak
    assert after == 0 and meter.current == 40
    del small


def test_views_share_their_storage_and_backward_buffers_are_counted():
    w = torch.randn(300, 300, requires_grad=True)  # created outside: not counted
    meter = LiveTensorBytes()
    with meter:
        x = torch.randn(64, 300)
        v = x.view(-1)  # no new storage
        (torch.tanh(x @ w) ** 2).sum().backward()
    assert meter.peak >= 4 * (64 * 300 * 2 + 300 * 300)  # x, an activation, dL/dw (others freed on the way)
    assert meter.peak < 4 * (64 * 300 * 12 + 300 * 300 * 3)
    del v


def test_budget_from_the_option_and_the_default():
    cpu = torch.device("cpu")
    assert budget_bytes(2.5, cpu)[0] == int(2.5 * GB)
    assert default_budget_bytes(cpu) > 0
    with pytest.raises(ValueError, match="max_memory must be > 0"):
        budget_bytes(0.0, cpu)
