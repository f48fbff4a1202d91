"""Leapfrog (Störmer–Verlet, kick-drift-kick) for separable Hamiltonians H(q, p) = T(p) + V(q).

    p_{1/2} = p_n − h/2 ∂V/∂q(q_n)
    q_{n+1} = q_n + h ∂T/∂p(p_{1/2})
    p_{n+1} = p_{1/2} − h/2 ∂V/∂q(q_{n+1})

Second order, time-reversible and symplectic: the energy error stays bounded, O(h²), over
exponentially long times instead of drifting (Hairer, Lubich & Wanner, Geometric Numerical
Integration, §I.1 and §IX.8). Plain tensor operations: autograd differentiates through the steps.
"""

from __future__ import annotations

from typing import Callable, Sequence, Tuple, Union

import torch
from torch import Tensor

from .stepping import FixedStep


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
