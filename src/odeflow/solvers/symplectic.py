"""Leapfrog (Störmer–Verlet, kick-drift-kick) for separable Hamiltonians H(q, p) = T(p) + V(q).

    p_{1/2} = p_n − h/2 ∂V/∂q(q_n)
    q_{n+1} = q_n + h ∂T/∂p(p_{1/2})
    p_{n+1} = p_{1/2} − h/2 ∂V/∂q(q_{n+1})

Second order, time-reversible and symplectic: the energy error stays bounded, O(h²), over
exponentially long times instead of drifting (Hairer, Lubich & Wanner, Geometric Numerical
Integration, §I.1 and §IX.8). Plain tensor operations: autograd differentiates through the steps.

`Leapfrog` is the method as a `solver.Solver` (``solve(..., method="leapfrog", step=FixedStep(h))``)
for a separable field f(t, (q, p)) = (∂T/∂p(p), −∂V/∂q(q)) on a state whose first half is q and
second half p: one tensor whose last dimension holds q then p, or a tuple (q, p) of equal shapes.
It reads only the p-part of f at (q, ·) and the q-part at (·, p), which is all a separable field
depends on; a non-separable field gets a wrong answer, not an error. The kick at a step's end
is the next step's first kick (carried), so a step costs two evaluations of f.

`leapfrog` takes the two gradients separately (one network each in a separable Hamiltonian NN)
and runs its own loop: each kick evaluates only ∂V/∂q and each drift only ∂T/∂p, and a toy
field's step costs a sixth of a step through the solver loop (measured on the pendulum).
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from .controller import PIController
from .runge_kutta import hermite
from .solver import StepResult
from .stepping import Adaptive, FixedStep
from .times import Span, StepTimes, step_length

Func = Callable[[Tensor, Tensor], Tensor]


def halves(y: Tensor) -> Tuple[Tensor, Tensor]:
    """(q, p): the two halves of the last dimension."""
    n = y.shape[-1] if y.dim() else 1
    if n % 2:
        raise ValueError(
            f"method='leapfrog' needs a state (q, p) of two equal halves (last dimension q then p, or a tuple "
            f"(q, p) of equal shapes); got a state of shape {tuple(y.shape)}"
        )
    return y[..., : n // 2], y[..., n // 2 :]


class _EndsHermite:
    """Cubic Hermite output of a leapfrog step through f(t0, y0) and f(t1, y1), both evaluated
    only when an output falls inside the step (the kicks see f only in part)."""

    batched = False

    def __init__(self, f: Func, ends: Callable[[], List[Tensor]], y0: Tensor, y1: Tensor, h) -> None:
        self.f, self.ends, self.y0, self.y1, self.h = f, ends, y0, y1, h
        self.f01: Optional[Tuple[Tensor, Tensor]] = None

    def end_derivative(self) -> Optional[Tensor]:
        return None

    def at(self, theta) -> Tensor:
        if self.f01 is None:
            t0, t1 = self.ends()
            self.f01 = (self.f(t0, self.y0), self.f(t1, self.y1))
        return hermite(self.y0, self.y1, self.f01[0], self.f01[1], theta, self.h)

    def many(self, thetas: List[float]) -> List[Tensor]:
        return [self.at(th) for th in thetas]


_FIXED_ONLY = "method 'leapfrog' keeps its step fixed (symplectic); use step=FixedStep(h)"


class Leapfrog:
    """Störmer–Verlet as a `solver.Solver` (see the module docstring): fixed steps only, second
    order, and not for the continuous adjoint (its backward state is not a (q, p) pair)."""

    name, order, adaptive, adjoint = "leapfrog", 2, False, False
    c, stages = (0.0, 0.5, 1.0), 3  # the times of a step's three evaluations (a prepared grid's stage table)

    def controller(self, ctrl: Adaptive) -> PIController:
        raise ValueError(_FIXED_ONLY)

    def lands_on_outputs(self) -> bool:
        return False

    def check_adaptive(self) -> None:
        raise ValueError(_FIXED_ONLY)

    def step(
        self,
        f: Func,
        norm: Any,
        y: Tensor,
        carry: Any,
        t: float,
        h: float,
        t1: float,
        times: StepTimes,
        before_jump: bool = False,
        span: Optional[Span] = None,
    ) -> StepResult:
        """Kick (p-part of f at y, or the carried one), drift (q-part at the half-kicked state),
        kick (p-part at the drifted state, carried to the next step)."""
        t0, tm, te = times.stages(t, h, [0.0, 0.5, 1.0], before_jump, span)
        hd = h if span is None else step_length(t, t1, span, y.dtype)
        q, p = halves(y)
        kick0 = halves(f(t0, y))[1] if carry is None else carry
        p_half = p + (0.5 * hd) * kick0
        q1 = q + hd * halves(f(tm, torch.cat([q, p_half], dim=-1)))[0]
        drifted = torch.cat([q1, p_half], dim=-1)
        kick1 = halves(f(te, drifted))[1]
        y1 = torch.cat([q1, p_half + (0.5 * hd) * kick1], dim=-1)
        ends = lambda: times.stages(t, h, [0.0, 1.0], before_jump, span)  # noqa: E731
        return StepResult(y1, 0.0, _EndsHermite(f, ends, y, y1, hd), None, state=kick1)


LEAPFROG = Leapfrog()


def leapfrog(
    kinetic_grad: Callable[[Tensor], Tensor],
    potential_grad: Callable[[Tensor], Tensor],
    q0: Tensor,
    p0: Tensor,
    t: Union[Tensor, Sequence[float]],
    step: FixedStep,
) -> Tuple[Tensor, Tensor]:
    """Integrate dq/dt = ∂T/∂p(p), dp/dt = −∂V/∂q(q) and return (qs, ps), each [len(t), *q0.shape].

    kinetic_grad(p) = ∂T/∂p, potential_grad(q) = ∂V/∂q (same shapes as p and q). Each interval
    between output times is split into equal steps as ``FixedStep`` does (so any output times,
    irregular ones included, are hit exactly).
    """
    if not isinstance(step, FixedStep):
        raise TypeError(
            f"leapfrog takes step=FixedStep(h) or FixedStep(steps=n); got {step!r} "
            f"(a symplectic method keeps its step fixed)"
        )
    if q0.shape != p0.shape:
        raise ValueError(f"q0 and p0 must have the same shape; got {tuple(q0.shape)} and {tuple(p0.shape)}")
    times = [float(x) for x in (t.tolist() if isinstance(t, Tensor) else t)]
    if len(times) < 1:
        raise ValueError("t must hold at least one time")
    diffs = [b - a for a, b in zip(times[:-1], times[1:])]
    if diffs and not (all(d > 0 for d in diffs) or all(d < 0 for d in diffs)):
        raise ValueError(f"t must be strictly monotone; got {times[:6]}{'...' if len(times) > 6 else ''}")

    q, p = q0, p0
    qs, ps = [q], [p]
    for dt, n in zip(diffs, step.substeps(times)):
        h = dt / n
        for _ in range(n):
            p = p - 0.5 * h * potential_grad(q)
            q = q + h * kinetic_grad(p)
            p = p - 0.5 * h * potential_grad(q)
        qs.append(q)
        ps.append(p)
    return torch.stack(qs), torch.stack(ps)
