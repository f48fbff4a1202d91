"""torchdiffeq-compatible functions: code written for torchdiffeq 0.2.5 runs after changing the import.

`odeint`, `odeint_adjoint` and `odeint_event` take torchdiffeq's arguments with their meanings
and defaults (rtol=1e-7, atol=1e-9, method='dopri5'), return [len(t), *y0.shape] (a tuple of
such for tuple states), and accept every option of torchdiffeq's solvers (translation in
`dropin_options`). Methods: torchdiffeq's names ('rk4' is the 3/8 rule, as there) plus
odeflow's ('tsit5', 'rk4_38', the implicit methods, ...). Callbacks on func
(callback_step, callback_accept_step, callback_reject_step and their _adjoint variants) are
called as torchdiffeq calls them (t0 in the user's time, dt > 0, y0 shaped like the state).
Differences: solver failures raise SolverError instead of AssertionError; the adaptive
controller is a PI controller (step sequences differ, results agree within tolerance).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from .dropin_options import adjoint_norm_fn, resolve
from .gradients import DiscretizeOptimize, OptimizeDiscretize
from .solve import solve
from .solvers.hooks import NAMES as CALLBACK_NAMES
from .solvers.state import State


class _DropinFunc(nn.Module):
    """func seen through torchdiffeq's callback conventions (dt > 0; the adjoint callbacks get
    torchdiffeq's augmented state (vjp_t, y, adj_y, *adj_params)). Parameters stay func's."""

    def __init__(self, func: Callable) -> None:
        super().__init__()
        object.__setattr__(self, "base", func)  # not registered: parameters are resolved from func
        for name in CALLBACK_NAMES:
            cb = getattr(func, name, None)
            if cb is not None:
                object.__setattr__(self, name, self._wrap(cb, adjoint=False))
            cb = getattr(func, name + "_adjoint", None)
            if cb is not None:
                object.__setattr__(self, name + "_adjoint", self._wrap(cb, adjoint=True))

    @staticmethod
    def _wrap(cb: Callable, adjoint: bool) -> Callable:
        def call(t0: Tensor, y0, dt: Tensor):
            if adjoint:
                y0 = (torch.zeros((), dtype=y0[0].dtype, device=y0[0].device),) + tuple(y0)
            return cb(t0, y0, dt.abs())
        return call

    def forward(self, t: Tensor, y: State) -> State:
        return self.base(t, y)


def _wrapped(func: Callable) -> Callable:
    has = any(getattr(func, n, None) is not None or getattr(func, n + "_adjoint", None) is not None
              for n in CALLBACK_NAMES)
    return _DropinFunc(func) if has else func


def odeint(func: Callable[[Tensor, State], State], y0: State, t: Tensor, *, rtol: Any = 1e-7,
           atol: Any = 1e-9, method: Optional[str] = None, options: Optional[Dict[str, Any]] = None,
           event_fn: Optional[Callable] = None) -> Union[State, Tuple[Tensor, State]]:
    """Solve dy/dt = func(t, y), y(t[0]) = y0 and backpropagate through the solver steps
    (torchdiffeq.odeint). With ``event_fn(t, y)``, integrate from t[0] until a component of
    event_fn changes sign and return (event_t, solution at [t[0], event_t]); t must then hold
    two times, only t[0] and the direction of t[1] are used."""
    cfg = resolve(func, y0, t, rtol, atol, method, options)
    if event_fn is None:
        return solve(_wrapped(func), y0, t, method=cfg.method, step=cfg.step, gradient=DiscretizeOptimize()).ys
    return _event_mode(func, y0, t, cfg, DiscretizeOptimize(), event_fn, reroute=False)


def odeint_adjoint(func: Callable[[Tensor, State], State], y0: State, t: Tensor, *, rtol: Any = 1e-7,
                   atol: Any = 1e-9, method: Optional[str] = None, options: Optional[Dict[str, Any]] = None,
                   event_fn: Optional[Callable] = None, adjoint_rtol: Any = None, adjoint_atol: Any = None,
                   adjoint_method: Optional[str] = None, adjoint_options: Optional[Dict[str, Any]] = None,
                   adjoint_params: Optional[Sequence[Tensor]] = None) -> Union[State, Tuple[Tensor, State]]:
    """Solve with gradients from the continuous adjoint (torchdiffeq.odeint_adjoint).

    adjoint_* default to the forward settings (options without 'norm'); adjoint_options
    {'norm': 'seminorm'} leaves the parameter gradients out of the step-size control, a
    callable norm receives (t, y, adj_y, *adj_params) (tuple states: (t, *y, *adj_y, ...)).
    """
    if adjoint_params is None and not isinstance(func, nn.Module):
        raise ValueError("func must be an nn.Module to find the adjoint parameters; otherwise pass them as "
                         "adjoint_params=[...] (or adjoint_params=() if there are none)")
    if adjoint_method is not None and adjoint_method != method and options is not None and adjoint_options is None:
        raise ValueError("adjoint_method differs from method and options were given, so adjoint_options cannot be "
                         "inferred from options: pass adjoint_options as well")
    params = tuple(func.parameters()) if adjoint_params is None else tuple(adjoint_params)
    params = tuple(p for p in params if p.requires_grad)
    cfg = resolve(func, y0, t, rtol, atol, method, options)
    if adjoint_options is None:
        adj_options = {k: v for k, v in (options or {}).items() if k != "norm"}
    else:
        adj_options = dict(adjoint_options)
    norm = adj_options.pop("norm", None)
    seminorm = isinstance(norm, str) and norm == "seminorm"
    if isinstance(norm, str) and not seminorm:
        raise ValueError(f"adjoint_options['norm'] must be 'seminorm' or a callable; got {norm!r}")
    adj = resolve(None, y0, t, rtol if adjoint_rtol is None else adjoint_rtol,
                  atol if adjoint_atol is None else adjoint_atol,
                  method if adjoint_method is None else adjoint_method, adj_options, adjoint=True)
    step = adj.step
    if callable(norm) and hasattr(step, "norm"):
        from dataclasses import replace
        step = replace(step, norm=adjoint_norm_fn(norm, y0))
    gradient = OptimizeDiscretize(params=params, method=adj.method, step=step, seminorm=seminorm)
    if event_fn is None:
        return solve(_wrapped(func), y0, t, method=cfg.method, step=cfg.step, gradient=gradient).ys
    return _event_mode(func, y0, t, cfg, gradient, event_fn, reroute=False)


def odeint_event(func: Callable[[Tensor, State], State], y0: State, t0: Tensor, *, event_fn: Callable,
                 reverse_time: bool = False, odeint_interface: Callable = odeint, **kwargs
                 ) -> Tuple[Tensor, State]:
    """Integrate from t0 until event_fn(t, y) crosses zero; (event_t, solution at [t0, event_t])
    with gradients through the event time (implicit function theorem), as torchdiffeq.odeint_event.
    odeint_interface: odeint or odeint_adjoint (their keyword arguments pass through)."""
    if odeint_interface not in (odeint, odeint_adjoint):
        raise ValueError("odeint_interface must be odeflow.odeint or odeflow.odeint_adjoint")
    t0 = torch.as_tensor(t0).reshape(-1)[:1]
    t = torch.cat([t0, t0.detach() + (-1.0 if reverse_time else 1.0)])
    kwargs = dict(kwargs)
    rtol, atol = kwargs.pop("rtol", 1e-7), kwargs.pop("atol", 1e-9)
    cfg = resolve(func, y0, t, rtol, atol, kwargs.pop("method", None), kwargs.pop("options", None))
    if odeint_interface is odeint:
        if kwargs:
            raise TypeError(f"odeint_event got unexpected arguments {sorted(kwargs)} for odeint")
        gradient = DiscretizeOptimize()
    else:
        params = kwargs.pop("adjoint_params", None)
        if params is None:
            if not isinstance(func, nn.Module):
                raise ValueError("odeint_event with odeint_adjoint needs adjoint_params=... for a non-Module func")
            params = func.parameters()
        params = tuple(p for p in params if p.requires_grad)
        adj_method = kwargs.pop("adjoint_method", None)
        adj = resolve(None, y0, t, kwargs.pop("adjoint_rtol", None) or rtol, kwargs.pop("adjoint_atol", None) or atol,
                      adj_method if adj_method is not None else cfg.name, kwargs.pop("adjoint_options", None),
                      adjoint=True)
        if kwargs:
            raise TypeError(f"odeint_event got unexpected arguments {sorted(kwargs)} for odeint_adjoint")
        gradient = OptimizeDiscretize(params=params, method=adj.method, step=adj.step)
    return _event_mode(func, y0, t, cfg, gradient, event_fn, reroute=True)


def _event_mode(func, y0, t, cfg, gradient, event_fn, reroute: bool):
    from .event_solve import solve_with_events
    from .solvers.events import Event
    if len(t) != 2:
        raise ValueError(f"event handling needs len(t) == 2 (t[0] and the direction); got len(t)={len(t)}")
    direction = 1.0 if float(t[1]) > float(t[0]) else -1.0
    sol = solve_with_events(_wrapped(func), y0, t, cfg.method, cfg.step, gradient, Event(event_fn),
                            check_finite=True, reroute=reroute, t_end=direction * float("inf"))
    return sol.event_t.to(t.dtype), sol.ys
