"""torchdiffeq-compatible functions: code written for torchdiffeq runs after changing the import.

Same argument meanings, defaults (rtol=1e-7, atol=1e-9, method='dopri5') and output shape
[len(t), *y0.shape] (a tuple of such for tuple states). Differences: 'rk4' is the classic
Runge–Kutta scheme (torchdiffeq's 'rk4' uses the 3/8 rule); failures raise SolverError
instead of AssertionError.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence, Union

from torch import Tensor

from .gradients import DiscretizeOptimize, OptimizeDiscretize
from .solve import solve
from .solvers.methods import METHODS, get_method
from .solvers.state import State
from .solvers.stepping import Adaptive, FixedStep

_ALIASES = {"adaptive_heun": "heun"}
_FIXED_OPTIONS = {"step_size"}
_ADAPTIVE_OPTIONS = {"first_step", "max_num_steps", "min_step", "max_step", "safety", "ifactor", "dfactor", "norm"}


def _method_name(method: Optional[str]) -> str:
    name = "dopri5" if method is None else _ALIASES.get(method, method)
    if name not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid methods are {', '.join(sorted(METHODS))}"
                         f" (aliases: {', '.join(_ALIASES)})")
    return name



def _step_from_options(name: str, rtol: Any, atol: Any, options: Optional[Dict[str, Any]],
                       fixed_methods_only: bool = False) -> Union[FixedStep, Adaptive]:
    options = dict(options or {})
    tab = get_method(name)
    if not tab.adaptive or "step_size" in options:
        unknown = set(options) - _FIXED_OPTIONS - {"norm"}
        if unknown:
            raise ValueError(f"options {sorted(unknown)} are not understood for fixed-step method {name!r}; "
                             f"supported: {sorted(_FIXED_OPTIONS)}")
        return FixedStep(options.get("step_size"))
    unknown = set(options) - _ADAPTIVE_OPTIONS
    if unknown:
        raise ValueError(f"options {sorted(unknown)} are not understood for adaptive method {name!r}; "
                         f"supported: {sorted(_ADAPTIVE_OPTIONS)}")
    norm = options.get("norm")
    if norm is not None and norm != "seminorm":
        raise ValueError("options['norm'] supports only 'seminorm' (in adjoint_options); per-component "
                         "weights are available through odeflow.Adaptive(weights=...)")
    kwargs: Dict[str, Any] = {"rtol": rtol, "atol": atol}
    mapping = {"first_step": "first_step", "max_num_steps": "max_steps", "min_step": "min_step",
               "max_step": "max_step", "safety": "safety", "dfactor": "min_factor", "ifactor": "max_factor"}
    for key, field_name in mapping.items():
        if key in options and options[key] is not None:
            kwargs[field_name] = options[key]
    if "max_steps" in kwargs:
        kwargs["max_steps"] = int(kwargs["max_steps"])
    return Adaptive(**kwargs)


def odeint(func: Callable[[Tensor, State], State], y0: State, t: Tensor, *, rtol: Any = 1e-7,
           atol: Any = 1e-9, method: Optional[str] = None, options: Optional[Dict[str, Any]] = None) -> State:
    """Solve and backpropagate through the solver steps (torchdiffeq.odeint)."""
    name = _method_name(method)
    step = _step_from_options(name, rtol, atol, options)
    return solve(func, y0, t, method=name, step=step, gradient=DiscretizeOptimize()).ys


def odeint_adjoint(func: Callable[[Tensor, State], State], y0: State, t: Tensor, *, rtol: Any = 1e-7,
                   atol: Any = 1e-9, method: Optional[str] = None, options: Optional[Dict[str, Any]] = None,
                   adjoint_rtol: Any = None, adjoint_atol: Any = None, adjoint_method: Optional[str] = None,
                   adjoint_options: Optional[Dict[str, Any]] = None,
                   adjoint_params: Optional[Sequence[Tensor]] = None) -> State:
    """Solve with gradients from the continuous adjoint (torchdiffeq.odeint_adjoint).

    adjoint_* default to the forward settings; adjoint_options={'norm': 'seminorm'} leaves the
    parameter-gradient states out of the step-size control.
    """
    name = _method_name(method)
    step = _step_from_options(name, rtol, atol, options)
    adj_name = _method_name(adjoint_method) if adjoint_method is not None else name
    adj_options = dict(options or {}) if adjoint_options is None else dict(adjoint_options)
    seminorm = adj_options.get("norm") == "seminorm"
    adj_step = _step_from_options(adj_name, rtol if adjoint_rtol is None else adjoint_rtol,
                                  atol if adjoint_atol is None else adjoint_atol, adj_options)
    gradient = OptimizeDiscretize(params=adjoint_params, method=adj_name, step=adj_step, seminorm=seminorm)
    return solve(func, y0, t, method=name, step=step, gradient=gradient).ys
