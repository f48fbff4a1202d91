"""An ODE block h(T) = h(0) + int_0^T f(t, h) dt and its ResNet twin (seed 002 §1).

ResNet:  h_{k+1} = h_k + dt f(t_k, h_k),  k = 0..N-1,  dt = T/N,  t_k = k T/N
is the forward-Euler discretization of the ODE; `EulerStack` is that ResNet with the weights
of f shared across its N residual blocks (t_k is an input of f), so it has exactly the ODE
block's parameters and equals `ODEBlock(f, method='euler', step=FixedStep(steps=N))` bit for bit.

RNODE (Finlay et al. 2020, seed 001): with ``kinetic > 0`` the state grows a per-sample integral
E(T) = int_0^T 0.5 mean_i f_i(t, h)^2 dt (left out of the adaptive error norm); the classifier
adds kinetic * mean E(T) to its loss, which keeps trajectories straight and NFE low.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import replace
from typing import Callable, Optional, Tuple, Union

import torch
from torch import Tensor, nn

from ..gradients import DiscretizeOptimize, OptimizeDiscretize
from ..solve import solve
from ..solvers.solution import SolverStats
from ..solvers.stepping import Adaptive, FixedStep

State = Union[Tensor, Tuple[Tensor, ...]]
StepControl = Union[FixedStep, Adaptive]


def kinetic_rate(rates: Tuple[Tensor, ...]) -> Tensor:
    """0.5 * mean over all features of f^2, per sample: [batch]."""
    sq: Tensor = functools.reduce(operator.add, (r.reshape(r.shape[0], -1).pow(2).sum(dim=1) for r in rates))
    return 0.5 * sq / sum(r[0].numel() for r in rates)


class ODEBlock(nn.Module):
    """Solve dh/dt = field(t, h) on [0, T] and return h(T) (a tensor, or a tuple for tuple states).

    Args:
        field: f(t, h); h a tensor [batch, ...] or a tuple of them (e.g. `SecondOrder`).
        T: end time. method / step: the solver (any name of `odeflow.solve`; FixedStep or Adaptive).
        adjoint: optimize-discretize (continuous adjoint over the field's parameters) instead of
            discretize-optimize (backprop through the steps).
        kinetic: lambda_K; > 0 also integrates the kinetic energy (returned, per sample).
    After each call ``last_stats`` holds the solver statistics (nfe; nfe_backward once the
    adjoint's backward pass has run; discretize-optimize backpropagates through the stored
    evaluations and makes none).
    """

    def __init__(
        self,
        field: nn.Module,
        T: float = 1.0,
        method: str = "rk4",
        step: Optional[StepControl] = None,
        adjoint: bool = False,
        seminorm: bool = False,
        kinetic: float = 0.0,
    ) -> None:
        super().__init__()
        if not T > 0:
            raise ValueError(f"end time T must be > 0; got {T}")
        if kinetic < 0:
            raise ValueError(f"kinetic (lambda_K) must be >= 0; got {kinetic}")
        self.field, self.T = field, float(T)
        self.method = method
        self.step = step if step is not None else FixedStep(steps=4)
        self.adjoint, self.seminorm, self.kinetic = adjoint, seminorm, float(kinetic)
        self.last_stats = SolverStats()

    def set_solver(self, method: str, step: StepControl) -> None:
        """Re-discretize, e.g. evaluate a model trained with rk4 using dopri5."""
        self.method, self.step = method, step

    def _gradient(self) -> Union[DiscretizeOptimize, OptimizeDiscretize]:
        if self.adjoint:
            return OptimizeDiscretize(
                params=[p for p in self.field.parameters() if p.requires_grad], seminorm=self.seminorm
            )
        return DiscretizeOptimize()

    def forward(self, h0: State, regularize: bool = False) -> Tuple[State, Optional[Tensor]]:
        """h0 -> (h(T), E(T) or None); E is integrated when ``regularize`` (training) and kinetic > 0."""
        tuple_state = isinstance(h0, tuple)
        parts: Tuple[Tensor, ...] = h0 if isinstance(h0, tuple) else (h0,)
        field = self.field
        t = torch.tensor([0.0, self.T], dtype=torch.float64)
        with_energy = regularize and self.kinetic > 0
        if not with_energy:
            func: Callable = field
            y0: State = h0
            step = self.step
        else:
            n = len(parts)

            def func(t_: Tensor, y: Tuple[Tensor, ...]) -> Tuple[Tensor, ...]:
                rates = field(t_, y[:n] if tuple_state else y[0])
                rates = rates if tuple_state else (rates,)
                return (*rates, kinetic_rate(rates))

            y0 = (*parts, parts[0].new_zeros(parts[0].shape[0]))
            step = self.step
            if isinstance(step, Adaptive):
                weights = list(step.weights or [1.0] * n)[:n] + [0.0]
                step = replace(step, weights=weights)
        sol = solve(func, y0, t, method=self.method, step=step, gradient=self._gradient())
        self.last_stats = sol.stats
        ys = sol.ys
        if not with_energy:
            return (tuple(y[-1] for y in ys) if tuple_state else ys[-1]), None
        final = tuple(y[-1] for y in ys)
        return (final[:-1] if tuple_state else final[0]), final[-1]


class EulerStack(nn.Module):
    """The ResNet twin of an ODE block: N residual blocks h <- h + dt f(t_k, h) sharing f.

    Grid and arithmetic follow the solver's fixed-step Euler exactly (float64 grid
    t_k = k T / N, dt_k = t_{k+1} - t_k, fused add), so outputs agree bit for bit.
    """

    def __init__(self, field: nn.Module, steps: int, T: float = 1.0, kinetic: float = 0.0) -> None:
        super().__init__()
        if not (isinstance(steps, int) and steps >= 1):
            raise ValueError(f"steps (number of residual blocks) must be an integer >= 1; got {steps!r}")
        if not T > 0:
            raise ValueError(f"end time T must be > 0; got {T}")
        self.field, self.steps, self.T, self.kinetic = field, steps, float(T), float(kinetic)
        self.last_stats = SolverStats()

    def forward(self, h: Tensor, regularize: bool = False) -> Tuple[Tensor, Optional[Tensor]]:
        starts = torch.arange(self.steps, dtype=torch.float64) / self.steps * self.T
        ends = torch.cat([starts[1:], torch.tensor([self.T], dtype=torch.float64)])
        dts = (ends - starts).tolist()
        times = starts.to(device=h.device, dtype=h.dtype)
        energy = h.new_zeros(h.shape[0]) if regularize and self.kinetic > 0 else None
        for k, dt in enumerate(dts):
            f = self.field(times[k], h)
            if energy is not None:
                energy = torch.add(energy, kinetic_rate((f,)), alpha=dt)
            h = torch.add(h, f, alpha=dt)
        self.last_stats = SolverStats(nfe=self.steps, steps=self.steps, accepted=self.steps)
        return h, energy
