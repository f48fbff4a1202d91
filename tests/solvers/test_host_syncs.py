"""At most one host synchronisation per adaptive step (issue 18, item 3).

Host syncs are counted on CPU by instrumenting every Tensor -> Python conversion
(item, tolist, __bool__, __float__, __int__, __index__, nonzero): on a GPU each one waits for the device.
Solves with a loose and a tight tolerance differ only in their number of steps, so the
difference in syncs over the difference in attempted steps is the per-step cost, free of
the fixed per-solve syncs (time conversion, initial step estimate, final finite check)."""

from contextlib import contextmanager

import pytest
import torch
from torch import nn

import odeflow
from odeflow import Adaptive, DiscretizeOptimize, OptimizeDiscretize

D = torch.float64
_CONVERSIONS = ("item", "tolist", "__bool__", "__float__", "__int__", "__index__", "nonzero")


@contextmanager
def count_host_syncs():
    counter = {"n": 0}
    originals = {name: getattr(torch.Tensor, name) for name in _CONVERSIONS}

    def wrap(original):
        def counted(self, *args, **kwargs):
            counter["n"] += 1
            return original(self, *args, **kwargs)

        return counted

    try:
        for name, original in originals.items():
            setattr(torch.Tensor, name, wrap(original))
        yield counter
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


def test_counter_sees_conversions():
    x = torch.tensor([1.0, 2.0])
    with count_host_syncs() as c:
        float(x[0]), bool(x.sum() > 0), x.tolist(), x[1].item()
    assert c["n"] == 4
    assert float(x[0]) == 1.0  # restored


class Field(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2)).to(D)

    def forward(self, t, y):
        return self.net(y) - 0.3 * y * torch.sin(3 * t)


def _syncs_and_steps(rtol, gradient, backward):
    field = Field()
    y0 = torch.tensor([[0.8, -0.3], [0.1, 0.5]], dtype=D, requires_grad=backward)
    t = torch.linspace(0.0, 3.0, 4, dtype=D)
    with count_host_syncs() as c:
        sol = odeflow.solve(
            field, y0, t, method="dopri5", step=Adaptive(rtol=rtol, atol=rtol * 1e-2), gradient=gradient
        )
        forward = c["n"]
        if backward:
            sol.ys.sum().backward()
    return forward, c["n"] - forward, sol.stats


@pytest.mark.parametrize("gradient", [DiscretizeOptimize(), OptimizeDiscretize()])
def test_at_most_one_host_sync_per_adaptive_step_forward(gradient):
    loose_syncs, _, loose = _syncs_and_steps(1e-3, gradient, False)
    tight_syncs, _, tight = _syncs_and_steps(1e-8, gradient, False)
    extra_steps = tight.steps - loose.steps
    assert extra_steps >= 20, (loose.steps, tight.steps)
    assert tight_syncs - loose_syncs <= extra_steps, (
        f"{tight_syncs - loose_syncs} host syncs for {extra_steps} more attempted steps"
    )


def test_at_most_one_host_sync_per_adaptive_step_adjoint_backward():
    _, loose_syncs, loose = _syncs_and_steps(1e-3, OptimizeDiscretize(), True)
    _, tight_syncs, tight = _syncs_and_steps(1e-8, OptimizeDiscretize(), True)
    extra_steps = tight.steps_backward - loose.steps_backward
    assert extra_steps >= 20, (loose.steps_backward, tight.steps_backward)
    assert tight_syncs - loose_syncs <= extra_steps, (
        f"{tight_syncs - loose_syncs} host syncs for {extra_steps} more backward steps"
    )
