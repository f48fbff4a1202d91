"""torchdiffeq-compatible functions: code written for torchdiffeq 0.2.5 runs after changing the import.

`odeint`, `odeint_adjoint` and `odeint_event` take torchdiffeq's arguments with their meanings
and defaults (rtol=1e-7, atol=1e-9, method='dopri5'), return [len(t), *y0.shape] (a tuple of
such for tuple states), and accept every option of torchdiffeq's solvers (translation in
`dropin_options`). Methods: torchdiffeq's names ('rk4' is the 3/8 rule, as there) plus
odeflow's ('tsit5', 'rk4_38', the implicit methods, ...). Callbacks on func
(callback_step, callback_accept_step, callback_reject_step and their _adjoint variants) are
called as torchdiffeq calls them (t0 in the user's time, dt > 0, y0 shaped like the state;
fixed grids call only callback_step, scipy_solver none, with a warning naming the others).
Events work with every method but scipy_solver. Differences (docs/dropin.md): solver failures
raise SolverError instead of AssertionError; the adaptive controller is a PI controller (step
sequences differ, results agree within tolerance).
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from .dropin_options import Resolved, adjoint_norm_option, as_backward_norm, resolve
from .gradients import DiscretizeOptimize, OptimizeDiscretize
from .solve import solve
from .solvers.hooks import NAMES as CALLBACK_NAMES
from .solvers.scipy_method import ScipySolver
from .solvers.state import State
from .solvers.stepping import Adaptive, FixedStep
from .solving import Gradient

FIXED_GRID_CALLBACKS = ("callback_step",)  # torchdiffeq's fixed-grid solvers call only this one


class _DropinFunc(nn.Module):
    """func seen through torchdiffeq's callback conventions (dt > 0; the adjoint callbacks get
    torchdiffeq's augmented state (vjp_t, y, adj_y, *adj_params)). Parameters stay func's.
    ``forward`` / ``backward``: the callback names the forward / backward solver calls."""

    def __init__(self, func: Callable, forward: Sequence[str], backward: Sequence[str]) -> None:
        super().__init__()
        object.__setattr__(self, "base", func)  # not registered: parameters are resolved from func
        for name in forward:
            cb = getattr(func, name, None)
            if cb is not None:
                object.__setattr__(self, name, self._wrap(cb, adjoint=False))
        for name in backward:
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

    base: Callable  # the user's func (set in __init__, not a registered module)

    def forward(self, t: Tensor, y: State) -> State:
        return self.base(t, y)


def _supported(step: Any, method: Any) -> Tuple[str, ...]:
    """The callbacks torchdiffeq's solvers call: none for scipy_solver, callback_step only on
    fixed grids, all three for the adaptive solvers."""
    if isinstance(method, ScipySolver):
        return ()
    return FIXED_GRID_CALLBACKS if isinstance(step, FixedStep) else CALLBACK_NAMES


def _wrapped(func: Callable, cfg: Resolved, adj: Optional[Resolved] = None) -> Callable:
    """func with the callbacks the chosen solvers call; a warning names those never called
    (torchdiffeq's "Solver ... does not support callbacks")."""
    forward = _supported(cfg.step, cfg.method)
    backward = _supported(adj.step, adj.method) if adj is not None else ()
    for names, suffix, who in ((forward, "", cfg), (backward, "_adjoint", adj)):
        if who is None:
            continue
        unused = sorted(
            n + suffix for n in CALLBACK_NAMES if n not in names and getattr(func, n + suffix, None) is not None
        )
        if unused:
            warnings.warn(
                f"Solver {who.name!r} does not support callbacks {unused}: they are never called", stacklevel=2
            )
    # Wrapped whenever func has any callback, so that the solvers see only those called.
    has = any(getattr(func, n + suffix, None) is not None for n in CALLBACK_NAMES for suffix in ("", "_adjoint"))
    return _DropinFunc(func, forward, backward) if has else func


def odeint(
    func: Callable[[Tensor, State], State],
    y0: State,
    t: Tensor,
    *,
    rtol: Any = 1e-7,
    atol: Any = 1e-9,
    method: Optional[str] = None,
    options: Optional[Dict[str, Any]] = None,
    event_fn: Optional[Callable] = None,
) -> Union[State, Tuple[Tensor, State]]:
    """Solve dy/dt = func(t, y), y(t[0]) = y0 and backpropagate through the solver steps
    (torchdiffeq.odeint). With ``event_fn(t, y)``, integrate from t[0] until a component of
    event_fn changes sign and return (event_t, solution at [t[0], event_t]); t must then hold
    two times, only t[0] and the direction of t[1] are used."""
    cfg = resolve(func, y0, t, rtol, atol, method, options)
    f = _wrapped(func, cfg)
    if event_fn is None:
        return solve(f, y0, t, method=cfg.method, step=cfg.step, gradient=DiscretizeOptimize()).ys
    return _event_mode(f, y0, t, cfg, DiscretizeOptimize(), event_fn, reroute=False)


def odeint_adjoint(
    func: Callable[[Tensor, State], State],
    y0: State,
    t: Tensor,
    *,
    rtol: Any = 1e-7,
    atol: Any = 1e-9,
    method: Optional[str] = None,
    options: Optional[Dict[str, Any]] = None,
    event_fn: Optional[Callable] = None,
    adjoint_rtol: Any = None,
    adjoint_atol: Any = None,
    adjoint_method: Optional[str] = None,
    adjoint_options: Optional[Dict[str, Any]] = None,
    adjoint_params: Optional[Sequence[Tensor]] = None,
) -> Union[State, Tuple[Tensor, State]]:
    """Solve with gradients from the continuous adjoint (torchdiffeq.odeint_adjoint).

    adjoint_* default to the forward settings (options without 'norm'); adjoint_options
    {'norm': 'seminorm'} leaves the parameter gradients out of the step-size control, a
    callable norm receives (t, y, adj_y, *adj_params) (tuple states: (t, *y, *adj_y, ...)).
    The output's ``grad_fn.adjoint_options`` is the dict the backward solve uses (its 'norm'
    always a callable, as in torchdiffeq); changing it before backward() changes that solve.
    """
    cfg = resolve(func, y0, t, rtol, atol, method, options)
    gradient, adj = _adjoint_gradient(
        func,
        y0,
        t,
        rtol,
        atol,
        method,
        options,
        adjoint_rtol,
        adjoint_atol,
        adjoint_method,
        adjoint_options,
        adjoint_params,
    )
    f = _wrapped(func, cfg, adj)
    if event_fn is None:
        return solve(f, y0, t, method=cfg.method, step=cfg.step, gradient=gradient).ys
    return _event_mode(f, y0, t, cfg, gradient, event_fn, reroute=False)


def _adjoint_gradient(
    func,
    y0,
    t,
    rtol,
    atol,
    method,
    options,
    adjoint_rtol,
    adjoint_atol,
    adjoint_method,
    adjoint_options,
    adjoint_params,
) -> Tuple[OptimizeDiscretize, Resolved]:
    """The continuous adjoint with torchdiffeq's defaults: adjoint_rtol/atol/method default to the
    forward ones, adjoint_options to the forward options without 'norm'."""
    if adjoint_params is None and not isinstance(func, nn.Module):
        raise ValueError(
            "func must be an nn.Module to find the adjoint parameters; otherwise pass them as "
            "adjoint_params=[...] (or adjoint_params=() if there are none)"
        )
    if adjoint_method is not None and adjoint_method != method and options is not None and adjoint_options is None:
        raise ValueError(
            "adjoint_method differs from method and options were given, so adjoint_options cannot be "
            "inferred from options: pass adjoint_options as well"
        )
    if adjoint_options is not None and not isinstance(adjoint_options, dict):
        raise TypeError(f"adjoint_options must be a dict; got {type(adjoint_options).__name__}")
    params = tuple(func.parameters()) if adjoint_params is None else tuple(adjoint_params)
    params = tuple(p for p in params if p.requires_grad)
    opts = (
        {k: v for k, v in (options or {}).items() if k != "norm"} if adjoint_options is None else dict(adjoint_options)
    )
    forward_norm = (options or {}).get("norm")
    opts["norm"] = adjoint_norm_option(opts.get("norm"), y0, forward_norm if callable(forward_norm) else None)
    a_rtol = rtol if adjoint_rtol is None else adjoint_rtol
    a_atol = atol if adjoint_atol is None else adjoint_atol
    a_method = method if adjoint_method is None else adjoint_method
    last: Dict[str, Resolved] = {}

    def from_options(o: Dict[str, Any]):
        o = dict(o)
        norm = o.pop("norm", None)
        if norm is not None and not callable(norm):
            norm = adjoint_norm_option(norm, y0, forward_norm if callable(forward_norm) else None)
        adj = resolve(func, y0, t, a_rtol, a_atol, a_method, o, adjoint=True)
        step = adj.step
        if norm is not None and isinstance(step, Adaptive):
            step = replace(step, norm=as_backward_norm(norm))
        last["adj"] = Resolved(adj.name, adj.method, step)
        return adj.method, step

    a_method_obj, a_step = from_options(opts)
    gradient = OptimizeDiscretize(
        params=params, method=a_method_obj, step=a_step, options=opts, from_options=from_options
    )
    return gradient, last["adj"]


def odeint_event(
    func: Callable[[Tensor, State], State],
    y0: State,
    t0: Tensor,
    *,
    event_fn: Callable,
    reverse_time: bool = False,
    odeint_interface: Callable = odeint,
    **kwargs,
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
    method, options = kwargs.pop("method", None), kwargs.pop("options", None)
    cfg = resolve(func, y0, t, rtol, atol, method, options)
    if odeint_interface is odeint:
        if kwargs:
            raise TypeError(f"odeint_event got unexpected arguments {sorted(kwargs)} for odeint")
        gradient: Gradient = DiscretizeOptimize()
        adj = None
    else:
        names = ("adjoint_rtol", "adjoint_atol", "adjoint_method", "adjoint_options", "adjoint_params")
        unknown = sorted(set(kwargs) - set(names))
        if unknown:
            raise TypeError(f"odeint_event got unexpected arguments {unknown} for odeint_adjoint")
        gradient, adj = _adjoint_gradient(func, y0, t, rtol, atol, method, options, *(kwargs.get(n) for n in names))
    return _event_mode(_wrapped(func, cfg, adj), y0, t, cfg, gradient, event_fn, reroute=True)


def _event_mode(f, y0, t, cfg, gradient, event_fn, reroute: bool):
    from .solvers.events import Event
    from .solving import SolveCall, run

    if len(t) != 2:
        raise ValueError(f"event handling needs len(t) == 2 (t[0] and the direction); got len(t)={len(t)}")
    direction = 1.0 if float(t[1]) > float(t[0]) else -1.0
    sol = run(
        SolveCall(
            f,
            y0,
            t,
            cfg.method,
            cfg.step,
            gradient,
            True,
            Event(event_fn),
            event_end=direction * float("inf"),
            reroute=reroute,
        )
    )
    assert sol.event_t is not None  # odeint's event mode always ends on its event
    event_t = sol.event_t.to(t.dtype)
    anchor = sol.ys[0] if isinstance(sol.ys, tuple) else sol.ys
    if not reroute and isinstance(gradient, OptimizeDiscretize) and anchor.requires_grad:
        event_t = _NoEventTimeGradient.apply(event_t, anchor)
    return event_t, sol.ys


class _NoEventTimeGradient(torch.autograd.Function):
    """torchdiffeq's odeint_adjoint(event_fn=...) returns the event time from its adjoint node:
    it is part of the graph, but no gradient flows through it (odeint_event adds that one).
    Same here: t_e attached to the solution with a zero gradient."""

    @staticmethod
    def forward(ctx, event_t: Tensor, anchor: Tensor) -> Tensor:
        ctx.shape, ctx.dtype, ctx.device = anchor.shape, anchor.dtype, anchor.device
        return event_t.detach().clone()

    @staticmethod
    def backward(ctx, grad: Tensor):
        return None, torch.zeros(ctx.shape, dtype=ctx.dtype, device=ctx.device)
