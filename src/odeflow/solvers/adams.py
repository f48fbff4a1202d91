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
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from .explicit_methods import RK4_38
from .grid import Func, GridDiff, GridTimes, Span, grid_points, integrate_grid, step_length
from .hooks import StepHooks
from .runge_kutta import rk_step
from .solution import SolverStats
from .stepping import FixedStep

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

    def integrate(
        self,
        f: Func,
        y0: Tensor,
        t_out: Sequence[float],
        step: FixedStep,
        norm,
        stats: SolverStats,
        hooks: Optional[StepHooks] = None,
        t_tensor: Optional[Tensor] = None,
    ) -> List[Tensor]:
        """States at t_out[1:]; differentiable in the output times when ``t_tensor`` requires grad."""
        points = grid_points(step, t_out)
        diff = GridDiff.make(step, t_out, t_tensor, points)
        box: Optional[List] = [None] if step.interp == "own" else None

        def own(y: Tensor, h, s) -> Optional[Tensor]:
            """The last step's Adams polynomial (None after an RK4 start-up step)."""
            if box is None or box[0] is None:
                return None
            nodes, fs = box[0]
            return dense_output(y, h, nodes, fs, s)

        return integrate_grid(
            self.stepper(f, y0, step, dense=box),
            f,
            y0,
            points,
            t_out,
            step.interp,
            stats,
            hooks,
            step.perturb,
            diff,
            own,
        )

    def event_stepper(self, f: Func, y0: Tensor, step: FixedStep):
        """advance(t0, t1, y) -> (y1, dense) for event location: the dense output is the step's
        own Adams interpolant (`dense_output`), cubic Hermite after the RK4 start-up steps."""
        from .events import hermite_advance

        box: List = [None]
        hermite = hermite_advance(self.stepper(f, y0, step, dense=box), f, GridTimes(y0.dtype, y0.device, step.perturb))

        def advance(t0: float, t1: float, y: Tensor):
            y1, dense = hermite(t0, t1, y)
            if box[0] is None:
                return y1, dense
            nodes, fs = box[0]
            return y1, lambda v, h=t1 - t0: dense_output(y, h, nodes, fs, (v - t0) / h)

        return advance

    def stepper(self, f: Func, y0: Tensor, step: FixedStep, dense: Optional[List] = None):
        """advance(t0, t1, y) -> (y1, f(t0, y)): one step of a solve (the history lives in
        the closure, so the steps must be taken in order, all of the same size). With a list
        ``dense``, each step leaves there its interpolant's data (nodes, derivatives) or None
        after an RK4 start-up step (see `dense_output`)."""
        times = GridTimes(y0.dtype, y0.device, step.perturb)
        history: deque = deque(maxlen=self.max_order - 1)
        warned = [False]

        def advance(t0: float, t1: float, y: Tensor, span: Optional[Span] = None) -> Tuple[Tensor, Optional[Tensor]]:
            h = step_length(t0, t1, span, y.dtype)
            ts = times.stages(t0, t1 - t0, RK4_38.c, span)
            f0 = f(ts[0], y)
            history.appendleft(f0)
            order = min(len(history), self.max_order - 1)
            if dense is not None:
                dense[:] = [None]
            if order < MIN_ORDER - 1:
                y1, _, _ = rk_step(RK4_38, f, y, f0, ts, h, False)
                return y1, f0
            dy = _weighted(bashforth(order), history, h)
            if dense is not None:
                dense[:] = [(tuple(-j for j in range(order)), tuple(history)[:order])]
            if self.implicit:
                coeffs = moulton(order + 1)
                delta = _weighted(coeffs[1:], history, h)
                converged = False
                for _ in range(self.max_iters):
                    dy_old = dy
                    f_new = f(ts[-1], y + dy)
                    dy = (
                        delta + f_new * (h * coeffs[0])
                        if isinstance(h, Tensor)
                        else torch.add(delta, f_new, alpha=h * coeffs[0])
                    )
                    if dense is not None:  # the corrector's polynomial through f_new, f_n, f_n-1, ...
                        dense[:] = [(tuple(1 - j for j in range(order + 1)), (f_new,) + tuple(history)[:order])]
                    tol = self.atol + self.rtol * torch.maximum(dy_old.abs(), dy.abs())
                    converged = bool(((dy_old - dy).abs() / tol).max() < 1)
                    if converged:
                        break
                if not converged:
                    if not warned[0]:
                        warnings.warn(
                            "Adams–Moulton functional iteration did not converge; the solution may be "
                            "inaccurate (use a smaller step or loosen rtol/atol)",
                            stacklevel=2,
                        )
                        warned[0] = True
                    history.pop()
            return y + dy, f0

        return advance


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
