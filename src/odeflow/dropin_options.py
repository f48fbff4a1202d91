"""Translation of torchdiffeq's method names and options (0.2.5 and its current master, whose
implicit Runge–Kutta methods are fixed-grid solvers) into odeflow's step controls.

Adaptive solvers: first_step, safety, ifactor, dfactor, max_num_steps, min_step, max_step,
step_t, jump_t, norm (callable), dtype (times are float64 here whatever it says) and the
pre-0.2 grid_points/eps (mapped to step_t, or jump_t when eps > 0). Fixed-grid solvers:
step_size (torchdiffeq's grid t0 + k h; where the output times are not on it they are
interpolated), grid_constructor(func, y0, t), interp ('linear' or 'cubic'), perturb; Adams
also max_order and max_iters; implicit methods jacobian, newton_tol, max_newton; scipy_solver
solver, min_step, max_step. Unknown options are ignored with a warning, as torchdiffeq does.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Union

import torch
from torch import Tensor

from .solvers.adams import Adams
from .solvers.grid import on_grid, step_size_grid
from .solvers.implicit import ImplicitRK
from .solvers.methods import all_method_names, get_method
from .solvers.scipy_method import ScipySolver
from .solvers.stepping import Adaptive, FixedStep

TORCHDIFFEQ_ADAPTIVE = {"dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun"}
TORCHDIFFEQ_FIXED = {"euler", "midpoint", "heun2", "heun3", "rk4", "explicit_adams", "implicit_adams", "fixed_adams"}
ALIASES = {"adaptive_heun": "heun", "rk4": "rk4_38", "heun2": "heun", "fixed_adams": "implicit_adams"}
ADAPTIVE_OPTIONS = {
    "first_step",
    "max_num_steps",
    "min_step",
    "max_step",
    "safety",
    "ifactor",
    "dfactor",
    "norm",
    "step_t",
    "jump_t",
    "dtype",
    "grid_points",
    "eps",
}
FIXED_OPTIONS = {"step_size", "grid_constructor", "interp", "perturb", "norm"}
IMPLICIT_OPTIONS = {"jacobian", "newton_tol", "max_newton"}
SCIPY_OPTIONS = {"solver", "min_step", "max_step", "norm", "grid_points", "eps"}


@dataclass
class Resolved:
    name: str
    method: Any
    step: Union[FixedStep, Adaptive]


def _times(value: Any) -> List[float]:
    return [float(v) for v in torch.as_tensor(value).reshape(-1).tolist()]


def _tolerance(tol: Any, y0: Any, what: str) -> Any:
    if isinstance(tol, Tensor):
        if tol.requires_grad:
            raise ValueError(f"{what} cannot require gradient")
        if tol.numel() == 1:
            return float(tol)
        if isinstance(y0, Tensor):
            return torch.broadcast_to(tol.to(torch.float64), y0.shape).reshape(-1)
        return [float(v) for v in tol.reshape(-1)]
    if isinstance(tol, (list, tuple)):
        return [float(v) for v in tol]
    return float(tol)


def mixed_norm(parts) -> Tensor:
    """torchdiffeq's default norm of a tuple state: the largest RMS over the components."""
    if isinstance(parts, Tensor):
        return parts.abs().pow(2).mean().sqrt()
    if len(parts) == 0:
        return torch.tensor(0.0)
    return torch.stack([p.abs().pow(2).mean().sqrt().to(torch.float64) for p in parts]).max()


def _warn_unknown(name: str, options: Dict[str, Any], valid: set) -> None:
    unknown = sorted(set(options) - valid)
    if unknown:
        warnings.warn(
            f"{name}: unexpected options {unknown} are ignored (valid for this method: {sorted(valid)})", stacklevel=2
        )


def _first(v: float) -> float:
    return v[0] if isinstance(v, list) else (float(v.max()) if isinstance(v, Tensor) else v)


def resolve(
    func: Optional[Callable],
    y0: Any,
    t: Tensor,
    rtol: Any,
    atol: Any,
    method: Optional[str],
    options: Optional[Dict[str, Any]],
    adjoint: bool = False,
) -> Resolved:
    """The odeflow method and step control for torchdiffeq's (method, rtol, atol, options)."""
    if options is not None and not isinstance(options, dict):
        raise TypeError(f"options must be a dict; got {type(options).__name__}")
    opts = dict(options or {})
    requested = "dopri5" if method is None else method
    name = ALIASES.get(requested, requested)
    obj: Any
    try:
        obj = get_method(name)
    except ValueError:
        valid = sorted(set(all_method_names()) | TORCHDIFFEQ_ADAPTIVE | TORCHDIFFEQ_FIXED | {"scipy_solver"})
        raise ValueError(f"unknown method {method!r}; valid methods are {', '.join(valid)}") from None
    rtol, atol = _tolerance(rtol, y0, "rtol"), _tolerance(atol, y0, "atol")
    if isinstance(obj, ScipySolver):
        _warn_unknown(requested, opts, SCIPY_OPTIONS)
        step = Adaptive(
            rtol=rtol,
            atol=atol,
            min_step=float(opts.get("min_step", 0.0)),
            max_step=float(opts.get("max_step", math.inf)),
        )
        return Resolved(requested, ScipySolver(solver=opts.get("solver", "LSODA")), step)
    fixed = (
        requested in TORCHDIFFEQ_FIXED
        # torchdiffeq's master has the implicit RK methods as fixed-grid solvers (step_size,
        # grid_constructor, perturb; callback_step only); adaptive implicit steps stay in `solve`.
        or isinstance(obj, ImplicitRK)
        or not obj.adaptive
        or (requested not in TORCHDIFFEQ_ADAPTIVE and ("step_size" in opts or "grid_constructor" in opts))
    )
    if isinstance(obj, Adams):
        obj = Adams(
            implicit=obj.implicit,
            max_order=int(opts.pop("max_order", obj.max_order)),
            max_iters=int(opts.pop("max_iters", obj.max_iters)),
            rtol=_first(rtol),
            atol=_first(atol),
        )
    if isinstance(obj, ImplicitRK):
        kw = {k: opts.pop(k) for k in IMPLICIT_OPTIONS if k in opts}
        obj = obj.with_options(**kw) if kw else obj
    if fixed:
        return Resolved(requested, obj, _fixed_step(requested, func, y0, t, opts, adjoint))
    return Resolved(requested, obj, _adaptive_step(requested, y0, rtol, atol, opts))


def _fixed_step(name: str, func, y0, t: Tensor, opts: Dict[str, Any], adjoint: bool) -> FixedStep:
    _warn_unknown(name, opts, FIXED_OPTIONS)
    h, constructor = opts.get("step_size"), opts.get("grid_constructor")
    if h is not None and constructor is not None:
        raise ValueError("step_size and grid_constructor are mutually exclusive options")
    perturb = bool(opts.get("perturb", False))
    interp = opts.get("interp", "linear")
    values = _times(t.detach())
    if h is not None:
        h = float(h)
        if not (h > 0 and math.isfinite(h)):
            raise ValueError(f"options['step_size'] must be a positive number; got {h}")
        if adjoint or len(values) < 2 or on_grid(step_size_grid(values[0], values[-1], h), values):
            return FixedStep(h=h, perturb=perturb, interp=interp)
        return FixedStep(
            grid=tuple(step_size_grid(values[0], values[-1], h)), interp=interp, perturb=perturb, grid_from_t0=True
        )
    if constructor is not None:
        if adjoint:
            return (
                FixedStep(grid=_backward_grid(constructor, func, y0, t), interp=interp, perturb=perturb)
                if len(values) > 1
                else FixedStep(perturb=perturb)
            )
        grid = constructor(func, y0, t)
        return FixedStep(grid=tuple(_times(grid)), interp=interp, perturb=perturb)
    return FixedStep(perturb=perturb, interp=interp)


def _backward_grid(constructor: Callable, func, y0, t: Tensor) -> tuple:
    """The adjoint's steps from a grid_constructor: as torchdiffeq's backward solve, one call per
    output interval with t = [t_i, t_{i-1}] (func and y0 are the forward ones here, not the
    augmented system), joined into one decreasing grid through every output time."""
    tt = t.detach()
    pts: List[float] = []
    for i in range(len(tt) - 1, 0, -1):
        g = _times(constructor(func, y0, tt[[i, i - 1]]))
        if len(g) < 2 or g[0] != float(tt[i]) or g[-1] != float(tt[i - 1]):
            raise ValueError(
                f"grid_constructor(func, y0, t) must return a grid from t[0] to t[-1]; for "
                f"t=[{float(tt[i])}, {float(tt[i - 1])}] it returned {g[:3]} ... {g[-3:]}"
            )
        pts.extend(g if not pts else g[1:])
    return tuple(pts)


def _adaptive_step(name: str, y0, rtol, atol, opts: Dict[str, Any]) -> Adaptive:
    # step_size / grid_constructor on torchdiffeq's adaptive solvers: ignored with a warning, as there.
    _warn_unknown(name, opts, ADAPTIVE_OPTIONS)
    kw: Dict[str, Any] = {"rtol": rtol, "atol": atol}
    for key, field in (
        ("first_step", "first_step"),
        ("min_step", "min_step"),
        ("max_step", "max_step"),
        ("safety", "safety"),
        ("ifactor", "max_factor"),
        ("dfactor", "min_factor"),
    ):
        if opts.get(key) is not None:
            kw[field] = float(opts[key])
    if opts.get("max_num_steps") is not None:
        kw["max_steps"] = int(opts["max_num_steps"])
    step_t = _times(opts["step_t"]) if opts.get("step_t") is not None else []
    jump_t = _times(opts["jump_t"]) if opts.get("jump_t") is not None else []
    if opts.get("grid_points") is not None:
        warnings.warn(
            "grid_points/eps are torchdiffeq < 0.2 options: grid_points are used as step_t (or as jump_t when eps > 0)",
            stacklevel=2,
        )
        (jump_t if float(opts.get("eps", 0.0)) > 0 else step_t).extend(_times(opts["grid_points"]))
    kw["step_t"], kw["jump_t"] = tuple(step_t), tuple(jump_t)
    dtype = opts.get("dtype")
    if dtype is not None and dtype != torch.float64:
        warnings.warn(f"options['dtype']={dtype}: odeflow keeps times in float64 always", stacklevel=2)
    norm = opts.get("norm")
    if isinstance(norm, str):
        raise ValueError(
            f"options['norm']={norm!r}: 'seminorm' is an adjoint option "
            "(adjoint_options=dict(norm='seminorm')); options['norm'] takes a callable"
        )
    if norm is not None and not callable(norm):
        raise TypeError(f"options['norm'] must be callable norm(tensor or tuple) -> scalar; got {norm!r}")
    if norm is None and isinstance(y0, (tuple, list)):
        norm = mixed_norm
    kw["norm"] = norm
    return Adaptive(**kw)


def _splitter(y0: Any) -> Callable[[Tensor], Any]:
    """Flat (packed) state -> the user's tuple of tensors (identity for a tensor state)."""
    if not isinstance(y0, (tuple, list)):
        return lambda v: v
    numels, shapes = [p.numel() for p in y0], [p.shape for p in y0]
    return lambda v: tuple(x.view(s) for x, s in zip(v.reshape(-1).split(numels), shapes))


def adjoint_norm_option(norm: Any, y0: Any, forward_norm: Optional[Callable]) -> Callable:
    """The callable torchdiffeq keeps as ``adjoint_options['norm']``: it receives
    (t, y, adj_y, *adj_params), y and adj_y flat for tuple states (as there). Default:
    max(|t|, |y|, |adj_y|, max_i RMS(adj_param_i)) with |.| the forward norm; 'seminorm' leaves
    the parameters out (Kidger et al. 2021); a user callable of a tuple state receives
    (t, *y, *adj_y, *adj_params)."""
    split = _splitter(y0)
    tuple_state = isinstance(y0, (tuple, list))
    if forward_norm is None:
        forward_norm = mixed_norm
    state_norm = (lambda v: forward_norm(split(v))) if tuple_state else forward_norm  # noqa: E731
    if norm is None or (isinstance(norm, str) and norm == "seminorm"):
        with_params = norm is None

        def default_norm(parts) -> Tensor:
            t, y, adj_y, *adj_params = parts
            values = [t.abs(), state_norm(y), state_norm(adj_y)]
            if with_params:
                values.append(mixed_norm(tuple(adj_params)))
            return torch.stack([torch.as_tensor(v, dtype=torch.float64).reshape(()) for v in values]).max()

        return default_norm
    if isinstance(norm, str):
        raise ValueError(f"adjoint_options['norm'] must be 'seminorm' or a callable; got {norm!r}")
    if not callable(norm):
        raise TypeError(f"adjoint_options['norm'] must be callable norm(tuple) -> scalar; got {norm!r}")
    if not tuple_state:
        return norm

    def user_norm(parts) -> Tensor:
        t, y, adj_y, *adj_params = parts
        return norm((t, *split(y), *split(adj_y), *adj_params))

    return user_norm


def as_backward_norm(norm: Callable) -> Callable:
    """An adjoint norm in torchdiffeq's form (t, y, adj_y, *adj_params) as the error norm of
    odeflow's backward state (y, adj_y, *adj_params), which has no time component (t = 0)."""

    def fn(aug) -> Tensor:
        y = aug[0]
        return norm((torch.zeros((), dtype=y.real.dtype, device=y.device), *aug))

    return fn
