"""``method='scipy_solver'``: hand the solve to scipy.integrate.solve_ivp (torchdiffeq's wrapper).

The state goes to the host as float64 (complex128 for complex states) and back; no gradient
flows through scipy, so use it with `OptimizeDiscretize` (whose backward solve also runs in
scipy) or without gradients.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import List, Sequence

import torch
from torch import Tensor

from .errors import SolverError
from .solution import SolverStats
from .times import real_dtype


@dataclass(frozen=True)
class ScipySolver:
    """solver: a solve_ivp method name ('LSODA', 'RK45', 'DOP853', 'Radau', 'BDF', 'RK23')."""

    solver: str = "LSODA"
    name = "scipy_solver"
    order = 5
    adaptive = True

    def integrate(
        self, f, y0: Tensor, t_out: Sequence[float], step, norm, stats: SolverStats, hooks=None, t_tensor=None
    ) -> List[Tensor]:
        """States at t_out[1:] from solve_ivp (no gradient flows through scipy, t_tensor's neither)."""
        try:
            from scipy.integrate import solve_ivp
        except ImportError as exc:  # pragma: no cover - scipy is a core dependency here
            raise ImportError("method='scipy_solver' needs scipy: pip install scipy") from exc
        if y0.requires_grad and torch.is_grad_enabled():
            warnings.warn(
                "scipy_solver: no gradient flows through scipy; use odeint_adjoint / OptimizeDiscretize for gradients",
                stacklevel=2,
            )
        if hooks is not None:
            warnings.warn("scipy_solver does not call step callbacks", stacklevel=2)
        import numpy as np

        shape, dtype, device = y0.shape, y0.dtype, y0.device
        t_dtype = real_dtype(dtype)

        def np_f(t: float, y: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                yt = torch.from_numpy(y).to(device, dtype).reshape(shape)
                out = f(torch.tensor(t, dtype=t_dtype, device=device), yt)
            return out.detach().cpu().numpy().reshape(-1).astype(y.dtype)

        tol = lambda v: v.detach().cpu().numpy() if isinstance(v, Tensor) else v  # noqa: E731
        rtol = tol(getattr(norm, "rtol", 1e-7) if norm is not None else 1e-7)
        atol = tol(getattr(norm, "atol", 1e-9) if norm is not None else 1e-9)
        kwargs = {}
        if step is not None and hasattr(step, "max_step") and math.isfinite(step.max_step):
            kwargs["max_step"] = step.max_step
        if step is not None and getattr(step, "min_step", None) and self.solver == "LSODA":
            kwargs["min_step"] = step.min_step
        y_np = y0.detach().cpu().numpy().reshape(-1).astype(np.complex128 if dtype.is_complex else np.float64)
        sol = solve_ivp(
            np_f, (t_out[0], t_out[-1]), y_np, method=self.solver, t_eval=list(t_out), rtol=rtol, atol=atol, **kwargs
        )
        if not sol.success:
            raise SolverError(
                f"scipy solve_ivp({self.solver}) failed: {sol.message}",
                float(t_out[0]),
                float("nan"),
                "loosen rtol/atol or try another scipy solver (options={'solver': 'Radau'})",
            )
        stats.steps += int(len(sol.t))
        stats.accepted += int(len(sol.t))
        ys = torch.from_numpy(sol.y.T.copy()).to(device, dtype).reshape(len(t_out), *shape)
        return list(ys[1:].unbind(0))
