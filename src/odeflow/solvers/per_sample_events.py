"""Terminal events per sample: every row of a per-sample solve stops at its own event.

An event function g(t [B], y [B, ...]) -> [B] or [B, K] (with ``PerSample(compact=...)``
g(t, y, rows), as f) gives each row its own event functions. After every accepted step of a
row, a component that changes sign (in the Event's direction) is located by the Illinois
variant of regula falsi on g(t, interpolant(t)), row by row but all rows at once, with the
iteration of `events.EventWatcher._root`; the row ends at its earliest root t_e.

Gradients through each row's event time follow from the implicit function theorem on
g_b(t_e,b, y_b(t_e,b; θ)) = 0:
    dt_e,b/dθ = -(∂g_b/∂y · ∂y_b/∂θ) / (∂g_b/∂t + ∂g_b/∂y · f_b),
so a loss L(t_e, y_e) sends back to the fixed-time state y_b(t_e,b) the gradient
    dL/dy_e,b - (dL/dt_e,b + dL/dy_e,b · f_b) / (dg_b/dt) · ∂g_b/∂y       (`SampleEventTime`),
the shared-step rule (`events.EventTime`) applied to every row on its own.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .errors import SolverError
from .events import Event, as_events


def sample_events(events) -> List[Event]:
    """The events of a per-sample solve: terminal ones only (each row stops at its own root)."""
    evs = as_events(events)
    if not evs:
        raise ValueError("events=[] is empty: give an Event (or g(t, y)) or leave events out")
    soft = [i for i, e in enumerate(evs) if not e.terminal]
    if soft:
        raise ValueError(
            f"per_sample=True supports terminal events only (event {soft[0]} has terminal=False): each sample "
            "stops at its own root; record non-terminal roots by solving without per_sample"
        )
    return evs


class SampleEvents:
    """The event functions of a per-sample solve, evaluated on a batch of rows.

    ``call(fn, t, y, rows)`` evaluates one event function on the rows ``rows`` (None: all);
    values are [n, M] float64 over all components of all events, without a graph."""

    def __init__(self, events: Sequence[Event], call: Callable) -> None:
        self.events, self.call = list(events), call
        self.directions: Optional[Tensor] = None
        self.tols: Optional[Tensor] = None
        self.sizes: List[int] = []

    def values(self, t: Tensor, y: Tensor, rows: Optional[Tensor]) -> Tensor:
        with torch.no_grad():
            cols = []
            for i, ev in enumerate(self.events):
                g = torch.as_tensor(self.call(ev.fn, t, y, rows))
                g = g.real if g.is_complex() else g
                if g.dim() == 0 or g.shape[0] != y.shape[0] or g.dim() > 2:
                    raise ValueError(
                        f"with per_sample=True event {i} must return [batch] or [batch, K] (one value per row); "
                        f"got shape {tuple(g.shape)} for {y.shape[0]} rows"
                    )
                cols.append(g.reshape(y.shape[0], -1).to(torch.float64))
            out = torch.cat(cols, dim=1)
        if self.directions is None:
            self.sizes = [c.shape[1] for c in cols]
            dirs = [float(ev.direction) for ev, c in zip(self.events, cols) for _ in range(c.shape[1])]
            tols = [float(ev.tol) for ev, c in zip(self.events, cols) for _ in range(c.shape[1])]
            self.directions = torch.tensor(dirs, dtype=torch.float64, device=out.device)
            self.tols = torch.tensor(tols, dtype=torch.float64, device=out.device)
        elif out.shape[1] != int(self.directions.shape[0]):
            raise ValueError(f"the events returned {out.shape[1]} values per row after {self.directions.shape[0]}")
        return out

    def crossings(self, g0: Tensor, g1: Tensor) -> Tensor:
        """[n, M]: component m of row b changes sign from g0 to g1 in its event's direction."""
        assert self.directions is not None
        rising, falling = (g0 < 0) & (g1 >= 0), (g0 > 0) & (g1 <= 0)
        return (rising & (self.directions >= 0)) | (falling & (self.directions <= 0))

    def component(self, m: int) -> Tuple[int, int]:
        """(event index, component within it) of overall component m."""
        for i, size in enumerate(self.sizes):
            if m < size:
                return i, m
            m -= size
        raise IndexError(m)

    def locate(
        self,
        cross: Tensor,
        g0: Tensor,
        g1: Tensor,
        a0: Tensor,
        b0: Tensor,
        dense: Callable[[Tensor], Tensor],
        rows: Optional[Tensor],
    ) -> Tuple[Tensor, Tensor, Tensor]:
        """The earliest root of every row in (a0, b0] among its crossing components.

        Illinois regula falsi per row (as `EventWatcher._root`), every row at once; ``dense(c)``
        is the state of every row at its time c. Returns (hit [n], t_e [n], component [n])."""
        assert self.tols is not None
        n, n_comp = cross.shape
        direction = torch.where(b0 >= a0, torch.ones_like(a0), -torch.ones_like(a0))
        best = torch.full((n,), float("inf"), dtype=torch.float64, device=a0.device)
        t_best = b0.clone()
        comp = torch.full((n,), -1, dtype=torch.int64, device=a0.device)
        for m in range(n_comp):
            live = cross[:, m]
            if not bool(live.any()):
                continue
            root = self._illinois(m, live, g0[:, m], g1[:, m], a0, b0, dense, rows)
            earlier = live & (root * direction < best)
            best = torch.where(earlier, root * direction, best)
            t_best = torch.where(earlier, root, t_best)
            comp = torch.where(earlier, torch.full_like(comp, m), comp)
        return comp >= 0, t_best, comp

    def _illinois(
        self,
        m: int,
        live: Tensor,
        ga: Tensor,
        gb: Tensor,
        a: Tensor,
        b: Tensor,
        dense: Callable[[Tensor], Tensor],
        rows: Optional[Tensor],
    ) -> Tensor:
        assert self.tols is not None
        i_ev, k = self.component(m)
        ev = self.events[i_ev]
        ga, gb, a, b = ga.clone(), gb.clone(), a.clone(), b.clone()
        eps_tol = 4 * 2.2e-16 * torch.maximum(torch.maximum(a.abs(), b.abs()), torch.ones_like(a))
        tol = torch.clamp(eps_tol, min=float(self.tols[m]))
        found = torch.zeros_like(live)  # g(c) == 0 exactly: the root is c
        root_c = b.clone()
        done = ~live | (gb == 0)  # a root at the step's end: b itself
        side = torch.zeros_like(a, dtype=torch.int64)
        for _ in range(100):
            done = done | ((b - a).abs() <= tol)
            if bool(done.all()):
                break
            same = gb == ga
            c = torch.where(same, 0.5 * (a + b), (a * gb - b * ga) / torch.where(same, torch.ones_like(gb), gb - ga))
            inside = (torch.minimum(a, b) < c) & (c < torch.maximum(a, b))
            c = torch.where(inside, c, 0.5 * (a + b))
            c = torch.where(done, b, c)
            g_all = torch.as_tensor(self.call(ev.fn, c, dense(c), rows))
            g_all = g_all.real if g_all.is_complex() else g_all
            gc = g_all.reshape(c.shape[0], -1)[:, k].to(torch.float64)
            zero = ~done & (gc == 0)
            found, root_c = found | zero, torch.where(zero, c, root_c)
            done = done | zero
            to_b = ~done & ((gc < 0) == (gb < 0))
            to_a = ~done & ~to_b
            ga = torch.where(to_b & (side == -1), 0.5 * ga, ga)
            gb = torch.where(to_a & (side == 1), 0.5 * gb, gb)
            b, gb = torch.where(to_b, c, b), torch.where(to_b, gc, gb)
            a, ga = torch.where(to_a, c, a), torch.where(to_a, gc, ga)
            side = torch.where(to_b, -1, torch.where(to_a, 1, side))
        return torch.where(found, root_c, b)  # else the side past the crossing


class SampleEventTime(torch.autograd.Function):
    """(t_e [B], y_e [B, ...]) -> the same values; backward adds, row by row, the implicit
    dependence of t_e on y_e's inputs (module docstring). ``hit`` marks the rows that stopped
    at an event (the others pass their gradient unchanged); ``g(t, y)`` -> [B] is each row's
    event component, ``f(t, y)`` the vector field, both on all rows."""

    @staticmethod
    def forward(ctx, t_e: Tensor, y_e: Tensor, hit: Tensor, f: Callable, g: Callable):
        ctx.f, ctx.g = f, g
        ctx.save_for_backward(t_e, y_e, hit)
        return t_e.detach().clone(), y_e.detach().clone()

    @staticmethod
    def backward(ctx, grad_t: Optional[Tensor], grad_y: Tensor):
        t_e, y_e, hit = ctx.saved_tensors
        t_safe = torch.where(hit, t_e, torch.zeros_like(t_e))
        with torch.enable_grad():
            t_ = t_safe.detach().requires_grad_(True)
            y_ = y_e.detach().requires_grad_(True)
            gval = ctx.g(t_, y_)
            g_t, g_y = torch.autograd.grad(gval.sum(), (t_, y_), allow_unused=True)
        with torch.no_grad():
            fval = ctx.f(t_safe.to(y_e.dtype), y_e.detach())
        g_t = torch.zeros_like(t_e) if g_t is None else g_t
        g_y = torch.zeros_like(y_e) if g_y is None else g_y
        dims = tuple(range(1, y_e.dim()))
        dgdt = g_t + (g_y * fval).sum(dim=dims).to(g_t.dtype)
        grad_t = torch.zeros_like(t_e) if grad_t is None else torch.where(hit, grad_t, torch.zeros_like(grad_t))
        total_t = grad_t + (grad_y * fval).sum(dim=dims).to(grad_t.dtype)
        flat = hit & (dgdt == 0)
        if bool(flat.any()):
            b = int(flat.nonzero()[0, 0])
            raise SolverError(
                f"the event function of sample {b} does not change along its solution at the event (dg/dt = 0)",
                float(t_e[b]),
                float("nan"),
                "gradients through a tangential event are undefined",
            )
        scale = torch.where(hit, total_t / torch.where(hit, dgdt, torch.ones_like(dgdt)), torch.zeros_like(dgdt))
        shape = (-1,) + (1,) * (y_e.dim() - 1)
        return None, grad_y - g_y * scale.to(g_y.dtype).reshape(shape), None, None, None
