"""A memory budget too small for even one row says how large it must be, not "--batch 0"."""

import re

import pytest
import torch

from odeflow.flows.memory import GB
from odeflow.flows.memory_plan import plan_training_memory
from odeflow.flows.stacked import StackSpec, build_stacked_cnf
from odeflow.solvers.stepping import FixedStep


@pytest.mark.parametrize("dim, seed", [(3, 0)])
def test_a_tiny_budget_names_the_budget_that_fits_one_row(dim, seed):
    torch.manual_seed(seed)
    spec = StackSpec(blocks=2, layers=2, multiplier=4, activation="softplus", T=1.0)
    flow = build_stacked_cnf(dim, spec, method="rk4", step=FixedStep(steps=3)).to(torch.float64)
    x = torch.randn(32, dim, dtype=torch.float64)
    with pytest.raises(ValueError, match="too small for even one row") as info:
        plan_training_memory(flow, x, 256, 1000, 0)  # 1 kB (--max-memory 0.000001)
    assert "--batch 0" not in str(info.value)
    needed = float(re.search(r"at least ([0-9.e+-]+) GB", str(info.value)).group(1))
    plan = plan_training_memory(flow, x, 1, int(needed * GB * 1.01), 0)  # that budget does fit a row
    assert plan.predicted_mb > 0
