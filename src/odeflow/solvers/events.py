"""Events: roots of g(t, y(t)) located on the dense output during a solve.

An `Event` g (any number of components, each its own event function) is evaluated after
every accepted step; a component that changes sign inside the step (in the requested
direction) is located by the Illinois variant of regula falsi on g(t, interpolant(t)).
A terminal event ends the solve at its earliest root t_e. Gradients through t_e follow from
the implicit function theorem: g(t_e, y(t_e; θ)) = 0 gives
    dt_e/dθ = -(∂g/∂y · ∂y/∂θ) / (∂g/∂t + ∂g/∂y · f),
so a loss L(t_e, y_e) sends back to the fixed-time state y(t_e) the gradient
    dL/dy_e - (dL/dt_e + dL/dy_e · f) / (dg/dt) · ∂g/∂y         (`EventTime` below).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .errors import SolverError
from .solution import SolverStats
from .state import StatePacker


@dataclass(frozen=True)
class Event:
    """fn(t, y) -> tensor; every component is an event function. direction: +1 only roots
    where it rises through 0, -1 only falling ones, 0 both. terminal: end the solve at the
    first root. tol: time tolerance of the root (0: to rounding)."""

    fn: Callable
    direction: int = 0
    terminal: bool = True
    tol: float = 0.0

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise TypeError(f"Event(fn=...) must be callable as fn(t, y); got {type(self.fn).__name__}")
        if self.direction not in (-1, 0, 1):
            raise ValueError(f"Event(direction={self.direction!r}): use -1 (falling), 0 (both) or +1 (rising)")
        if not (self.tol >= 0):
            raise ValueError(f"Event(tol={self.tol}): must be >= 0")


@dataclass
class EventRecord:
    """A located root: event index, component of its output, time and state (no graph)."""

    index: int
    component: int
    t: float
    y: Tensor


def as_events(events) -> List[Event]:
    if events is None:
        return []
    items = list(events) if isinstance(events, (list, tuple)) else [events]
    out = []
    for e in items:
        if isinstance(e, Event):
            out.append(e)
        elif callable(e):
            out.append(Event(e))
        else:
            raise TypeError(f"events must be Event(...) objects or callables g(t, y); got {type(e).__name__}")
    return out


class EventWatcher:
    """Checks the events after every accepted step (see `loop.integrate_adaptive`)."""

    def __init__(
        self, events: Sequence[Event], packer: StatePacker, t0: float, y0: Tensor, t_dtype: torch.dtype
    ) -> None:
        self.events, self.packer, self.t_dtype = list(events), packer, t_dtype
        self.found: List[EventRecord] = []
        self.terminal: Optional[EventRecord] = None
        self.g_prev = self._values(t0, y0)

    def _time(self, t: float) -> Tensor:
        return torch.tensor(t, dtype=torch.float64).to(self.packer.device, self.t_dtype)

    def _values(self, t: float, y: Tensor) -> List[List[float]]:
        with torch.no_grad():
            out = []
            for ev in self.events:
                g = ev.fn(self._time(t), self.packer.unpack(y))
                g = torch.as_tensor(g)
                out.append((g.real if g.is_complex() else g).detach().reshape(-1).double().cpu().tolist())
            return out

    def _value(self, i: int, k: int, t: float, y: Tensor) -> float:
        return self._values_one(i, t, y)[k]

    def _values_one(self, i: int, t: float, y: Tensor) -> List[float]:
        with torch.no_grad():
            g = torch.as_tensor(self.events[i].fn(self._time(t), self.packer.unpack(y)))
            return (g.real if g.is_complex() else g).detach().reshape(-1).double().cpu().tolist()

    def check(self, t0: float, y0: Tensor, t1: float, y1: Tensor, dense: Callable[[float], Tensor]) -> bool:
        """Record the roots inside (t0, t1]; True when a terminal one ends the solve."""
        g1 = self._values(t1, y1)
        roots: List[Tuple[float, int, int]] = []
        for i, (ev, a_vals, b_vals) in enumerate(zip(self.events, self.g_prev, g1)):
            if len(a_vals) != len(b_vals):
                raise ValueError(f"event {i} returned {len(b_vals)} values after returning {len(a_vals)}")
            for k, (ga, gb) in enumerate(zip(a_vals, b_vals)):
                rising, falling = ga < 0 <= gb, ga > 0 >= gb
                if (rising and ev.direction >= 0) or (falling and ev.direction <= 0):
                    roots.append((self._root(i, k, t0, t1, ga, gb, dense), i, k))
        self.g_prev = g1
        if not roots:
            return False
        direction = 1.0 if t1 >= t0 else -1.0
        roots.sort(key=lambda r: r[0] * direction)
        for t_root, i, k in roots:
            with torch.no_grad():
                rec = EventRecord(i, k, t_root, dense(t_root).detach())
            self.found.append(rec)
            if self.events[i].terminal:
                self.terminal = rec
                return True
        return False

    def _root(
        self, i: int, k: int, a: float, b: float, ga: float, gb: float, dense: Callable[[float], Tensor]
    ) -> float:
        """Illinois regula falsi for component k of event i on [a, b], g(a) g(b) <= 0."""
        if gb == 0:
            return b
        tol = max(self.events[i].tol, 4 * 2.2e-16 * max(abs(a), abs(b), 1.0))
        side = 0
        for _ in range(100):
            if abs(b - a) <= tol:
                break
            c = (a * gb - b * ga) / (gb - ga) if gb != ga else 0.5 * (a + b)
            if not (min(a, b) < c < max(a, b)):
                c = 0.5 * (a + b)
            gc = self._value(i, k, c, dense(c))
            if gc == 0:
                return c
            if (gc < 0) == (gb < 0):
                b, gb = c, gc
                if side == -1:
                    ga *= 0.5
                side = -1
            else:
                a, ga = c, gc
                if side == 1:
                    gb *= 0.5
                side = 1
        return b  # the side past the crossing, so the event has happened at the returned time


def fixed_steps_until_event(
    solver,
    f: Callable,
    y0: Tensor,
    t0: float,
    h: float,
    t_end: float,
    watcher: EventWatcher,
    stats: SolverStats,
    max_steps: int,
    times,
) -> None:
    """Fixed steps of size h from t0 toward t_end (may be infinite) until a terminal event, for
    any method with the `solver.Solver` interface (explicit RK, Adams, implicit RK), the roots
    located on each step's interpolant."""
    direction = 1.0 if t_end >= t0 else -1.0
    h = direction * abs(h)
    t, y, carry = t0, y0, None
    for k in range(1, max_steps + 1):
        t1 = t0 + k * h  # torchdiffeq's grid t0 + k h
        t1 = t1 if (t1 - t_end) * direction < 0 else t_end
        res = solver.step(f, None, y, carry, t, t1 - t, t1, times)
        stats.steps += 1
        stats.accepted += 1
        dense = res.dense

        def at(v: float, t: float = t, t1: float = t1, d=dense) -> Tensor:
            return d.at((v - t) / (t1 - t))

        if watcher.check(t, y, t1, res.y1, at) or t1 == t_end:
            return
        t, y, carry = t1, res.y1, res.carry()
    raise SolverError(
        f"no terminal event within {max_steps} fixed steps", t, h, "check the event function or raise max_num_steps"
    )


class EventTime(torch.autograd.Function):
    """(t_e, y_e) -> the same values; backward adds the implicit dependence of t_e on y_e's
    inputs (module docstring). f and g act on the packed state."""

    @staticmethod
    def forward(ctx, t_e: Tensor, y_e: Tensor, f: Callable, g: Callable):
        ctx.f, ctx.g = f, g
        ctx.save_for_backward(t_e, y_e)
        return t_e.detach().clone(), y_e.detach().clone()

    @staticmethod
    def backward(ctx, grad_t: Tensor, grad_y: Tensor):
        t_e, y_e = ctx.saved_tensors
        with torch.enable_grad():
            t_ = t_e.detach().requires_grad_(True)
            y_ = y_e.detach().requires_grad_(True)
            gval = ctx.g(t_, y_)
            g_t, g_y = torch.autograd.grad(gval, (t_, y_), allow_unused=True)
        with torch.no_grad():
            fval = ctx.f(t_e.detach(), y_e.detach())
        g_t = torch.zeros_like(t_e) if g_t is None else g_t
        g_y = torch.zeros_like(y_e) if g_y is None else g_y
        dgdt = g_t + (g_y * fval).sum()
        if grad_t is None:
            grad_t = torch.zeros_like(t_e)
        total_t = grad_t + (grad_y * fval).sum()
        if float(dgdt.abs()) == 0.0:
            raise SolverError(
                "the event function does not change along the solution at the event (dg/dt = 0)",
                float(t_e),
                float("nan"),
                "gradients through a tangential event are undefined",
            )
        return None, grad_y - g_y * (total_t / dgdt).to(g_y.dtype), None, None
