"""Step-size control: a fixed grid, or adaptive steps with a PI controller.

Adaptive control follows Hairer, Nørsett & Wanner I §II.4 (error norm, initial step) and
Gustafsson's PI controller (Hairer & Wanner II §IV.2):
    h_new = h * clip(safety * err^(-alpha/q) * err_prev^(beta/q), min_factor, max_factor),
with q = (order of the error estimate) + 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .state import ErrorNorm, PerComponent


@dataclass(frozen=True)
class FixedStep:
    """Steps of size at most ``h``; each interval between requested output times is split
    into ceil(|dt| / h) equal steps, so the grid lands exactly on every output time.
    ``steps=n`` instead splits every interval into exactly n equal steps, whatever its length
    (the cost stays fixed when a learnable end time moves); neither steps from output time to
    output time.

    grid: explicit step times instead (from t[0] to t[-1], monotone); output times between
    grid points are interpolated, ``interp='linear'`` or ``'cubic'`` (Hermite, one extra
    evaluation per output step) as torchdiffeq's fixed-grid solvers do, or ``'own'``: the
    method's own interpolant (the Adams polynomial of the step, with which events are located;
    cubic Hermite for the other methods).
    perturb: evaluate f just after the start and just before the end of every step
    (one ulp in the state's dtype), so a vector field that jumps at grid points sees the
    correct side of the jump (torchdiffeq's ``perturb=True``).
    grid_from_t0: the explicit grid's points are t[0] + fixed offsets (torchdiffeq's ``step_size``
    grid), so time gradients move every point with t[0], not only the ends."""

    h: Optional[float] = None
    steps: Optional[int] = None
    grid: Optional[Tuple[float, ...]] = None
    interp: str = "linear"
    perturb: bool = False
    grid_from_t0: bool = False  # the grid is t0 + k h (torchdiffeq's step_size): it moves with t[0]

    def __post_init__(self) -> None:
        if self.grid is not None:
            object.__setattr__(self, "grid", tuple(float(g) for g in self.grid))
            if self.h is not None or self.steps is not None:
                raise ValueError("FixedStep takes grid, h or steps, not several")
            if len(self.grid) < 2:
                raise ValueError(f"FixedStep(grid=...) needs at least two times; got {list(self.grid)}")
        if self.interp not in ("linear", "cubic", "own"):
            raise ValueError(f"FixedStep(interp={self.interp!r}): use 'linear', 'cubic' or 'own'")
        if self.h is not None and not (isinstance(self.h, (int, float)) and math.isfinite(self.h) and self.h > 0):
            raise ValueError(f"FixedStep(h={self.h!r}): h must be a positive finite number")
        if self.steps is not None and not (isinstance(self.steps, int) and self.steps >= 1):
            raise ValueError(f"FixedStep(steps={self.steps!r}): steps must be an integer >= 1")
        if self.h is not None and self.steps is not None:
            raise ValueError("FixedStep takes h or steps, not both")

    def substeps(self, t: Sequence[float]) -> List[int]:
        """Number of equal steps in each interval [t_i, t_{i+1}]."""
        if self.h is None:
            return [self.steps or 1] * (len(t) - 1)
        # The slack keeps h = (t1 - t0)/n from turning into n + 1 steps through rounding
        # (float32 times included: their spacing is off by ~1e-6 relative): a step may exceed h
        # by at most 0.01%.
        return [max(1, math.ceil(abs(b - a) / self.h * (1 - 1e-4))) for a, b in zip(t[:-1], t[1:])]


@dataclass(frozen=True)
class Adaptive:
    """Adaptive step size from the embedded error estimate.

    rtol, atol: tolerances (a float, or one per tuple-state component).
    weights: per-component weights in the error norm (0 leaves a component out).
    first_step: initial step (default: Hairer's algorithm). min_step / max_step bound |h|; a
    step of size min_step is accepted whatever its error estimate (as in torchdiffeq), so the
    solve goes on at min_step where the controller would go below it.
    max_steps: attempted steps before `SolverError`. safety, min_factor, max_factor, alpha,
    beta: controller constants.
    step_t: times every step must land on (not stepped over, e.g. known kinks of f).
    jump_t: times where f is discontinuous: steps land there and f is evaluated anew just
    after the jump (torchdiffeq's ``step_t`` / ``jump_t``).
    norm: a function replacing the RMS error norm; it receives the scaled error
    err / (atol + rtol * max(|y0|, |y1|)) shaped like the state and returns a scalar.
    """

    rtol: PerComponent = 1e-7
    atol: PerComponent = 1e-9
    weights: Optional[Sequence[float]] = None
    first_step: Optional[float] = None
    min_step: float = 0.0
    max_step: float = math.inf
    max_steps: int = 100_000
    safety: float = 0.9
    min_factor: float = 0.2
    max_factor: float = 10.0
    alpha: float = 0.7
    beta: float = 0.4
    step_t: Tuple[float, ...] = ()
    jump_t: Tuple[float, ...] = ()
    norm: Optional[Callable] = None

    def __post_init__(self) -> None:
        for name in ("step_t", "jump_t"):
            values = tuple(float(v) for v in getattr(self, name))
            if not all(math.isfinite(v) for v in values):
                raise ValueError(f"Adaptive({name}=...): times must be finite; got {list(values)}")
            object.__setattr__(self, name, values)
        if set(self.step_t) & set(self.jump_t):
            raise ValueError(
                f"step_t and jump_t share times {sorted(set(self.step_t) & set(self.jump_t))}; "
                "give each time once (jump_t already lands on it)"
            )
        if self.norm is not None and not callable(self.norm):
            raise TypeError(f"Adaptive(norm=...) must be callable norm(scaled_error) -> scalar; got {self.norm!r}")
        for name in ("rtol", "atol"):
            value = getattr(self, name)
            tols = [value] if isinstance(value, (int, float)) else list(value)
            bad = [v for v in tols if not (math.isfinite(v) and v >= 0)]
            if bad or (name == "rtol" and any(v <= 0 for v in tols)):
                need = "> 0" if name == "rtol" else ">= 0"
                raise ValueError(f"Adaptive({name}={value!r}): {name} must be finite and {need}")
        if self.first_step is not None and not self.first_step > 0:
            raise ValueError(f"Adaptive(first_step={self.first_step}): must be > 0")
        if not (0 <= self.min_step <= self.max_step):
            raise ValueError(f"Adaptive: need 0 <= min_step ({self.min_step}) <= max_step ({self.max_step})")
        if self.max_steps < 1:
            raise ValueError(f"Adaptive(max_steps={self.max_steps}): must be >= 1")
        if not (0 < self.min_factor <= 1 <= self.max_factor and 0 < self.safety <= 1):
            raise ValueError("Adaptive: need 0 < min_factor <= 1 <= max_factor and 0 < safety <= 1")

    def clamp(self, h: float) -> float:
        """|h| limited to [min_step, max_step], sign kept."""
        return math.copysign(min(max(abs(h), self.min_step), self.max_step), h)


def initial_step(
    f: Callable[[Tensor, Tensor], Tensor],
    t0: float,
    y0: Tensor,
    f0: Tensor,
    order: int,
    norm: ErrorNorm,
    direction: float,
    as_time: Callable[[float], Tensor],
) -> float:
    """Hairer's starting step (Hairer I, §II.4, 'automatic step size selection'); one extra f call."""
    scale = norm.scale(y0)
    d01 = torch.stack([norm.rms(y0 / scale), norm.rms(f0 / scale)]).tolist()
    d0, d1 = d01
    h0 = 1e-6 if (d0 < 1e-5 or d1 < 1e-5 or not math.isfinite(d1)) else 0.01 * d0 / d1
    y1 = y0 + (direction * h0) * f0
    f1 = f(as_time(t0 + direction * h0), y1)
    d2 = float(norm.rms((f1 - f0) / scale)) / h0
    if max(d1, d2) <= 1e-15 or not math.isfinite(d2):
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** (1.0 / (order + 1))
    return min(100 * h0, h1)
