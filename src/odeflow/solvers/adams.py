"""Adams–Bashforth (explicit) and Adams–Bashforth–Moulton (predictor–corrector) methods.

On a fixed grid with step h, using the derivatives f_n, f_{n-1}, ... of previous steps:

    predictor (AB, k values):   y_{n+1} = y_n + h sum_{j<k} beta_j f_{n-j}
    corrector (AM, k+1 values): y_{n+1} = y_n + h (beta*_{-1} f(t_{n+1}, y_{n+1}) + sum_{j<k} beta*_j f_{n-j})

with beta_j = int_0^1 L_j(s) ds over the Lagrange basis of the nodes s = -j (AB) and
s = 1, 0, -1, ... (AM) (Hairer I, §III.1). The corrector is solved by functional iteration.
As in torchdiffeq's ``explicit_adams`` / ``implicit_adams``, the order grows with the
history (from 3 up to max_order - 1), the first steps are taken with the 3/8-rule RK4, and a
corrector that does not converge in max_iters iterations drops the oldest derivative.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from .controller import PIController
from .explicit_methods import RK4_38
from .grid import Func
from .runge_kutta import rk_step
from .solver import HermiteInterpolant, StepResult
from .state import ErrorNorm
from .stepping import Adaptive
from .times import Span, StepTimes, step_length

MIN_ORDER, MAX_ORDER = 4, 12


def _integral_of_lagrange(nodes: Sequence[int], j: int) -> Fraction:
    """int_0^1 prod_{m != j} (s - nodes[m]) / (nodes[j] - nodes[m]) ds, exactly."""
    poly = [Fraction(1)]  # ascending coefficients
    denom = Fraction(1)
    for m, node in enumerate(nodes):
        if m == j:
            continue
        poly = [a - node * b for a, b in zip([Fraction(0)] + poly, poly + [Fraction(0)])]
        denom *= nodes[j] - node
    return sum(c / (i + 1) for i, c in enumerate(poly)) / denom


@cache
def bashforth(k: int) -> Tuple[float, ...]:
    """AB weights of f_n, f_{n-1}, ..., f_{n-k+1}."""
    nodes = [-j for j in range(k)]
    return tuple(float(_integral_of_lagrange(nodes, j)) for j in range(k))


@cache
def moulton(k: int) -> Tuple[float, ...]:
    """AM weights of f_{n+1}, f_n, ..., f_{n-k+2} (k values)."""
    nodes = [1 - j for j in range(k)]
    return tuple(float(_integral_of_lagrange(nodes, j)) for j in range(k))


@dataclass(frozen=True)
class Adams:
    """Variable-order Adams method on a fixed grid (see the module docstring).

    implicit: correct every predictor with Adams–Moulton (functional iteration, at most
    max_iters evaluations, converged when |change| <= atol + rtol |dy| elementwise).
    """

    implicit: bool = True
    max_order: int = MAX_ORDER
    max_iters: int = 4
    rtol: float = 1e-7
    atol: float = 1e-9

    def __post_init__(self) -> None:
        if not 1 <= self.max_order <= MAX_ORDER:
            raise ValueError(f"Adams(max_order={self.max_order}): must be between 1 and {MAX_ORDER}")
        if self.max_order < MIN_ORDER:
            warnings.warn(f"max_order is below {MIN_ORDER}, so the solver reduces to the 3/8-rule rk4.", stacklevel=2)
        if self.max_iters < 1:
            raise ValueError(f"Adams(max_iters={self.max_iters}): must be >= 1")

    @property
    def name(self) -> str:
        return "implicit_adams" if self.implicit else "explicit_adams"

    order = 4
    adaptive = False
    c, stages = RK4_38.c, RK4_38.stages  # a step's evaluation times (a prepared grid's stage table)

    # ---- the solver interface (solver.Solver): fixed steps only ----------------------------
    def controller(self, ctrl: Adaptive) -> PIController:
        raise ValueError(f"{self.name} has no error estimate: use step=FixedStep(h) (options=dict(step_size=h))")

    def lands_on_outputs(self) -> bool:
        return True

    def check_adaptive(self) -> None:
        self.controller(Adaptive())

    def step(
        self,
        f: Func,
        norm: Optional[ErrorNorm],
        y: Tensor,
        carry: Optional[Tuple[Tensor, ...]],
        t: float,
        h: float,
        t1: float,
        times: StepTimes,
        before_jump: bool = False,
        span: Optional[Span] = None,
    ) -> StepResult:
        """One step of a solve; ``carry`` is the history f_{n-1}, f_{n-2}, ... of the earlier steps
        (None at the start), all of the same size. The result's state is the new history and its
        interpolant the step's Adams polynomial (cubic Hermite after an RK4 start-up step)."""
        hd = step_length(t, t1, span, y.dtype)
        ts = times.stages(t, h, RK4_38.c, before_jump, span)
        f0 = f(ts[0], y)
        history: Tuple[Tensor, ...] = ((f0,) + tuple(carry or ()))[: self.max_order - 1]
        order = min(len(history), self.max_order - 1)
        if order < MIN_ORDER - 1:
            y1, _, _ = rk_step(RK4_38, f, y, f0, ts, hd, False)
            end = lambda: times.stages(t, h, [1.0], before_jump, span)[0]  # noqa: E731
            return StepResult(y1, 0.0, HermiteInterpolant(f, end, y, y1, f0, hd, None), f0, state=history)
        dy = _weighted(bashforth(order), history, hd)
        nodes: Tuple[int, ...] = tuple(-j for j in range(order))
        fs: Tuple[Tensor, ...] = history[:order]
        if self.implicit:
            coeffs = moulton(order + 1)
            delta = _weighted(coeffs[1:], history, hd)
            converged = False
            for _ in range(self.max_iters):
                dy_old = dy
                f_new = f(ts[-1], y + dy)
                dy = (
                    delta + f_new * (hd * coeffs[0])
                    if isinstance(hd, Tensor)
                    else torch.add(delta, f_new, alpha=hd * coeffs[0])
                )
                nodes, fs = tuple(1 - j for j in range(order + 1)), (f_new,) + history[:order]
                tol = self.atol + self.rtol * torch.maximum(dy_old.abs(), dy.abs())
                converged = bool(((dy_old - dy).abs() / tol).max() < 1)
                if converged:
                    break
            if not converged:
                warnings.warn(
                    "Adams–Moulton functional iteration did not converge; the solution may be "
                    "inaccurate (use a smaller step or loosen rtol/atol)",
                    stacklevel=2,
                )
                history = history[:-1]
        return StepResult(y + dy, 0.0, AdamsInterpolant(y, hd, nodes, fs), f0, state=history)


class AdamsInterpolant:
    """The Adams step's own polynomial (`dense_output`) as a `solver.Interpolant`."""

    batched = False

    def __init__(self, y0: Tensor, h: Union[float, Tensor], nodes: Sequence[int], fs: Sequence[Tensor]) -> None:
        self.y0, self.h, self.nodes, self.fs = y0, h, nodes, fs

    def at(self, theta: Union[float, Tensor]) -> Tensor:
        return dense_output(self.y0, self.h, self.nodes, self.fs, theta)

    def many(self, thetas: List[float]) -> List[Tensor]:
        return [self.at(th) for th in thetas]

    def end_derivative(self) -> Optional[Tensor]:
        return None


def dense_output(
    y0: Tensor, h: Union[float, Tensor], nodes: Sequence[int], fs: Sequence[Tensor], theta: Union[float, Tensor]
) -> Tensor:
    """The Adams step's own interpolant: y(t_n + theta h) = y_n + h sum_j B_j(theta) f_j with
    B_j(theta) = int_0^theta L_j(s) ds over the step's nodes (s = 0, -1, ... for Adams–Bashforth,
    1, 0, -1, ... for Adams–Moulton); at theta = 1 it is the step's result (Hairer I, §III.1)."""
    weights = [sum(c * theta ** (i + 1) for i, c in enumerate(poly)) for poly in _antiderivatives(tuple(nodes))]
    if isinstance(theta, Tensor) and not isinstance(h, Tensor):
        h = torch.as_tensor(h, dtype=theta.dtype, device=theta.device)
    return y0 + _weighted(weights, fs, h)


@cache
def _antiderivatives(nodes: Tuple[int, ...]) -> Tuple[Tuple[float, ...], ...]:
    """Coefficients of theta^1, theta^2, ... of int_0^theta L_j(s) ds for every node j, exactly."""
    out = []
    for j in range(len(nodes)):
        poly, denom = [Fraction(1)], Fraction(1)
        for m, node in enumerate(nodes):
            if m != j:
                poly = [a - node * b for a, b in zip([Fraction(0)] + poly, poly + [Fraction(0)])]
                denom *= nodes[j] - node
        out.append(tuple(float(c / (i + 1) / denom) for i, c in enumerate(poly)))
    return tuple(out)


def _weighted(coeffs: Sequence[Union[float, Tensor]], fs: Sequence[Tensor], h: Union[float, Tensor]) -> Tensor:
    """h sum_j coeffs_j fs_j (h a tensor when the step size is differentiated; tensor
    coefficients, from a differentiable interpolation point, come with a tensor h)."""
    if isinstance(h, Tensor) or any(isinstance(c, Tensor) for c in coeffs):
        return h * sum((fj * c for c, fj in zip(coeffs[1:], list(fs)[1:])), fs[0] * coeffs[0])
    acc = fs[0] * (h * coeffs[0])
    for c, fj in zip(coeffs[1:], list(fs)[1:]):
        acc = torch.add(acc, fj, alpha=h * float(c))
    return acc
