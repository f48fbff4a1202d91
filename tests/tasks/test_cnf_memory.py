"""plan_memory: the memory probes stay off the run's random stream."""

import torch

from odeflow.flows.stacked import StackSpec, build_stacked_cnf
from odeflow.solvers.stepping import FixedStep
from odeflow.tasks.cnf_memory import plan_memory
from odeflow.training.context import RunContext
from odeflow.training.distributed import Distributed


def test_planning_leaves_the_random_stream_alone():
    spec = StackSpec(blocks=1, layers=2, multiplier=4, activation="softplus", T=1.0)
    flow = build_stacked_cnf(3, spec, method="rk4", step=FixedStep(steps=4)).double()
    x = torch.randn(64, 3, dtype=torch.float64)
    ctx = RunContext(device=torch.device("cpu"), dist=Distributed(), folder=None, seed=0, quiet=True)
    torch.manual_seed(5)
    expected = torch.rand(4)
    torch.manual_seed(5)
    record = plan_memory(flow, x, 32, ctx, max_memory=4.0)
    assert record["strategy"] in ("plain", "checkpointed", "adjoint")
    assert torch.equal(torch.rand(4), expected)
