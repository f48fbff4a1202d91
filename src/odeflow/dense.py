"""`odeint_dense` (torchdiffeq.odeint_dense): one solve over [t0, t1], then y(t) anywhere in it.

The accepted steps (start time, state, size) are kept; y at a query time is the method's own
dense output of the step containing it (the step's stages are recomputed from its start).
"""

from __future__ import annotations

import bisect
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor

from .dropin_options import resolve
from .solve import solve
from .solvers.methods import get_method
from .solvers.runge_kutta import interpolate, rk_step
from .solvers.tableau import ButcherTableau
from .solvers.times import real_dtype


class _Recording:
    def __init__(self, func: Callable) -> None:
        self.func = func
        self.steps: List[Tuple[float, Tensor, float]] = []

    def __call__(self, t: Tensor, y: Tensor) -> Tensor:
        return self.func(t, y)

    def callback_accept_step(self, t0: Tensor, y0: Tensor, dt: Tensor) -> None:
        self.steps.append((float(t0), y0, float(dt)))


def odeint_dense(
    func: Callable,
    y0: Tensor,
    t0: Any,
    t1: Any,
    *,
    rtol: Any = 1e-7,
    atol: Any = 1e-9,
    method: Optional[str] = None,
    options: Optional[Dict[str, Any]] = None,
) -> Callable[[Tensor], Tensor]:
    """Solve from t0 to t1 > t0 and return dense_output_fn(t_eval) -> [*t_eval.shape, *y0.shape]."""
    if not isinstance(y0, Tensor):
        raise TypeError("odeint_dense takes a tensor state (tuple states are not supported, as in torchdiffeq)")
    t = torch.stack([torch.as_tensor(t0), torch.as_tensor(t1)]).to(torch.float64).reshape(-1)
    if not float(t[1]) > float(t[0]):
        raise ValueError(f"odeint_dense needs t0 < t1; got t0={float(t[0])}, t1={float(t[1])}")
    cfg = resolve(func, y0, t, rtol, atol, method, options)
    tab = get_method(cfg.method)
    if not isinstance(tab, ButcherTableau):
        raise ValueError(f"odeint_dense needs an explicit Runge–Kutta method; got {cfg.name!r}")
    rec = _Recording(func)
    solve(rec, y0, t, method=tab, step=cfg.step)
    starts = [s[0] for s in rec.steps]
    t_dtype = real_dtype(y0.dtype)

    def dense_output_fn(t_eval: Tensor) -> Tensor:
        flat = torch.as_tensor(t_eval).reshape(-1).tolist()
        outs = []
        for tv in flat:
            k = min(max(bisect.bisect_right(starts, tv) - 1, 0), len(starts) - 1)
            ta, ya, h = rec.steps[k]
            ts = list(torch.tensor([ta + c * h for c in tab.c], dtype=torch.float64).to(y0.device, t_dtype).unbind())
            y1, ks, _ = rk_step(tab, func, ya, func(ts[0], ya), ts, h, False)
            f1 = None if tab.dense is not None else func(torch.tensor(ta + h, dtype=t_dtype, device=y0.device), y1)
            outs.append(interpolate(tab, ya, y1, ks, f1, (tv - ta) / h, h))
        return torch.stack(outs).reshape(*torch.as_tensor(t_eval).shape, *y0.shape)

    return dense_output_fn
