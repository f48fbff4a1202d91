"""Fixed-grid solves compiled as one ``scan`` over the grid, one driver for every method.

A method enters as a *stepper*: a pure step on tensors, nothing kept between calls,

    carry = stepper.start(f, y0, ts_0)                 (what the first step needs)
    carry, y1 = stepper.step(f, carry, ts_n, h_n)       (one step; ts_n: the step's stage times)

and `grid_solve` drives them all alike: the first ``stepper.unrolled`` steps (while the carry is
still growing, as an Adams history does) are traced one by one, the rest is one scan whose
carry has a fixed shape, so compile time does not grow with the number of steps. Steppers:

- `RKStep`: an explicit Runge–Kutta step (Butcher tableau); without gradients a first-same-as-
  last derivative is carried (torch's scan differentiated through that second carry gave wrong
  parameter gradients, torch 2.13, tested; with gradients every step evaluates f(t, y) anew);
- `LeapfrogStep`: Störmer–Verlet kick-drift-kick (`symplectic.Leapfrog`), the closing kick
  carried without gradients; with them each step opens with the p-part of f(t, y_n), which is
  the carried kick for the separable fields the method is for (their p-part reads q only);
- `AdamsStep`: explicit Adams (`adams.Adams`): the 3/8-rule RK4 while fewer than three
  derivatives are known, then Adams–Bashforth of the order the history allows, the history
  f_n, f_{n-1}, ... in the carry (Hairer I, §III.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, List, Tuple

import torch
from torch import Tensor

from .adams import MIN_ORDER, bashforth
from .explicit_methods import RK4_38
from .runge_kutta import rk_step
from .symplectic import halves
from .tableau import ButcherTableau

Func = Callable[[Tensor, Tensor], Tensor]


def scan_op() -> Callable:
    """torch's structured loop (a clear error on a torch without it)."""
    try:
        from torch._higher_order_ops.scan import scan
    except ImportError as exc:  # pragma: no cover - depends on the installed torch
        raise RuntimeError(
            f"compile=True needs torch >= 2.6 (torch.compile with scan); installed torch "
            f"{torch.__version__}. Upgrade torch or use compile=False"
        ) from exc
    return scan


@dataclass(frozen=True)
class RKStep:
    """Explicit Runge–Kutta step; ``carry_derivative``: carry f(t_{n+1}, y_{n+1}) (FSAL)."""

    tab: ButcherTableau
    carry_derivative: bool
    unrolled = 0

    def start(self, f: Func, y0: Tensor, ts0: Tensor) -> Any:
        return (y0, f(ts0[0], y0)) if self.carry_derivative else y0

    def step(self, f: Func, carry: Any, ts: Tensor, h: Tensor) -> Tuple[Any, Tensor]:
        y, k1 = carry if self.carry_derivative else (carry, None)
        ts_list = list(ts.unbind())
        if k1 is None:
            k1 = f(ts_list[0], y)
        y1, ks, _ = rk_step(self.tab, f, y, k1, ts_list, h, False)
        # Fresh tensors for the carry: a first-same-as-last y1 is also a stage input, and scan
        # refuses outputs that may alias each other or its inputs.
        return ((y1.clone(), ks[-1].clone()) if self.carry_derivative else y1.clone()), y1.clone()

    def evaluations(self, steps: int) -> int:
        if self.carry_derivative:
            return steps * (self.tab.stages - 1) + 1
        return steps * self.tab.stages


@dataclass(frozen=True)
class LeapfrogStep:
    """Kick-drift-kick on a (q, p) state; ``carry_kick``: carry the closing kick."""

    carry_kick: bool
    unrolled = 0

    def start(self, f: Func, y0: Tensor, ts0: Tensor) -> Any:
        return (y0, halves(f(ts0[0], y0))[1].contiguous()) if self.carry_kick else y0

    def step(self, f: Func, carry: Any, ts: Tensor, h: Tensor) -> Tuple[Any, Tensor]:
        y, kick0 = carry if self.carry_kick else (carry, None)
        t0, tm, te = ts.unbind()
        q, p = halves(y)
        if kick0 is None:
            kick0 = halves(f(t0, y))[1]
        p_half = p + (0.5 * h) * kick0
        q1 = q + h * halves(f(tm, torch.cat([q, p_half], dim=-1)))[0]
        kick1 = halves(f(te, torch.cat([q1, p_half], dim=-1)))[1]
        y1 = torch.cat([q1, p_half + (0.5 * h) * kick1], dim=-1)
        return ((y1.clone(), kick1.clone()) if self.carry_kick else y1.clone()), y1.clone()

    def evaluations(self, steps: int) -> int:
        return 2 * steps + 1 if self.carry_kick else 3 * steps


@dataclass(frozen=True)
class AdamsStep:
    """Explicit Adams with at most ``max_order`` - 1 derivatives kept; the carry is (y, history).
    ``weights[k - 1]``: the order-k Adams–Bashforth weights (`adams.bashforth`, computed before
    tracing: `AdamsStep.of`)."""

    max_order: int
    weights: Tuple[Tuple[float, ...], ...]

    @classmethod
    def of(cls, max_order: int) -> AdamsStep:
        return cls(max_order, tuple(bashforth(k) for k in range(1, max_order)))

    @property
    def unrolled(self) -> int:  # steps until the history holds max_order - 1 derivatives
        return self.max_order - 1

    def start(self, f: Func, y0: Tensor, ts0: Tensor) -> Any:
        return (y0, ())

    def step(self, f: Func, carry: Any, ts: Tensor, h: Tensor) -> Tuple[Any, Tensor]:
        y, history = carry
        ts_list = list(ts.unbind())
        f0 = f(ts_list[0], y)
        history = ((f0,) + tuple(history))[: self.max_order - 1]
        if len(history) < MIN_ORDER - 1:
            y1, _, _ = rk_step(RK4_38, f, y, f0, ts_list, h, False)
        else:
            w = self.weights[len(history) - 1]
            y1 = y + h * sum((fj * c for c, fj in zip(w[1:], history[1:])), history[0] * w[0])
        return (y1.clone(), tuple(x.clone() for x in history)), y1.clone()

    def evaluations(self, steps: int) -> int:
        """One a step; four in each start-up RK4 step (all steps when the order stays below 3)."""
        rk = min(steps, MIN_ORDER - 2) if self.max_order - 1 >= MIN_ORDER - 1 else steps
        return steps + 3 * rk


def grid_solve(
    stepper: Any, f: Func, y0: Tensor, stage_times: Tensor, hs: Tensor, out_index: Tensor
) -> Tuple[Tensor, Tensor]:
    """All steps of a fixed grid (stage times [steps, stages], step sizes [steps]): the first
    ``stepper.unrolled`` traced one by one, the rest one scan. Returns (states at the output
    steps, final state)."""
    n = stage_times.shape[0]
    carry = stepper.start(f, y0, stage_times[0])
    ys: List[Tensor] = []
    for i in range(min(stepper.unrolled, n)):
        carry, y1 = stepper.step(f, carry, stage_times[i], hs[i])
        ys.append(y1)
    first = len(ys)
    if first < n:
        _, rest = scan_op()(lambda c, xs: stepper.step(f, c, xs[0], xs[1]), carry, (stage_times[first:], hs[first:]))
        out = torch.cat([torch.stack(ys), rest]) if ys else rest
    else:
        out = torch.stack(ys)
    return out.index_select(0, out_index), out[-1]
