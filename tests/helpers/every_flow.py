"""One list of every flow odeflow ships, each built small, random (not at its zero init) and in
float64, with a data sampler: tests/flows/test_flow_contract.py runs the same checks over all of
them (log-density, inverse, gradients, sampling, save and load), as zuko tests every flow."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict

import torch
from torch import Tensor, nn

from odeflow.flows import CNF, CNFStack
from odeflow.flows.multiscale import MultiscaleCNF
from odeflow.flows.stacked import StackSpec, build_stacked_cnf
from odeflow.nn import ODENet
from odeflow.solvers import Adaptive

TIGHT = 1e-9  # dopri5 tolerance for the log-density check: exact to ~1e-7 with the exact trace
LOOSE = 1e-5  # for the checks that need no exact log-density (inverse, gradients, save/load)


@dataclass(frozen=True)
class FlowCase:
    build: Callable[[float], nn.Module]  # a fresh flow at a dopri5 tolerance (seeded: same weights)
    data: Callable[[int, torch.Generator], Tensor]  # n points where the flow is defined
    event_shape: tuple  # one data point's shape


def _scaled(flow: nn.Module, factor: float) -> nn.Module:
    with torch.no_grad():
        for p in flow.parameters():
            p.mul_(factor)
    return flow.double()


def _cnf(tol: float = LOOSE) -> nn.Module:
    torch.manual_seed(1)
    net = ODENet(3, [16, 16], layer="concatsquash", activation="tanh")
    return _scaled(CNF(net, 3, T=0.7, divergence="exact", method="dopri5", step=Adaptive(tol, tol)), 1.5)


def _stack(tol: float = LOOSE) -> CNFStack:
    torch.manual_seed(2)
    flow = build_stacked_cnf(
        2, StackSpec(blocks=2, layers=2, multiplier=5), method="dopri5", step=Adaptive(tol, tol), divergence="exact"
    )
    return _scaled(flow, 1.5)


def _multiscale(tol: float = LOOSE) -> nn.Module:
    torch.manual_seed(3)
    flow = MultiscaleCNF(
        (1, 4, 4), scales=2, hidden=(4, 4, 4), T=0.5, alpha=0.05, zero_init=False,
        divergence="exact", method="dopri5", step=Adaptive(tol, tol),
    )  # fmt: skip
    return _scaled(flow, 3.0)


def _gaussian(dim: int) -> Callable[[int, torch.Generator], Tensor]:
    return lambda n, g: torch.randn(n, dim, generator=g, dtype=torch.float64)


def _images(n: int, g: torch.Generator) -> Tensor:
    return 0.05 + 0.9 * torch.rand(n, 1, 4, 4, generator=g, dtype=torch.float64)


EVERY_FLOW: Dict[str, FlowCase] = {
    "cnf": FlowCase(_cnf, _gaussian(3), (3,)),
    "cnf-stack": FlowCase(_stack, _gaussian(2), (2,)),
    "multiscale": FlowCase(_multiscale, _images, (1, 4, 4)),
}
