"""The Taylor derivative check of seed 000, eq. (13).

For a loss F, a claimed gradient g and a random direction v:
    E0(h) = |F(theta + h v) - F(theta)|             = O(h)
    E1(h) = |F(theta + h v) - F(theta) - h g^T v|   = O(h^2)   iff g is the gradient.
The slopes of log E0 and log E1 against log h should be about 1 and 2; a wrong gradient
shows E1 decaying only like h (slope ~1), or E1 >= E0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

import torch
from torch import Tensor


@dataclass
class DerivativeCheck:
    """E0 and E1 over the step sizes hs, and their fitted log-log slopes."""

    hs: List[float]
    e0: List[float]
    e1: List[float]
    slope0: float
    slope1: float

    @property
    def passed(self) -> bool:
        """True when E0 decays linearly and E1 quadratically (slopes within 0.3 of 1 and 2)."""
        return abs(self.slope0 - 1.0) < 0.3 and abs(self.slope1 - 2.0) < 0.3

    def table(self) -> str:
        rows = [f"{'h':>10} {'E0(h)':>12} {'E1(h)':>12}"]
        rows += [f"{h:10.3e} {a:12.4e} {b:12.4e}" for h, a, b in zip(self.hs, self.e0, self.e1)]
        rows.append(f"slopes: E0 {self.slope0:.2f} (expect 1), E1 {self.slope1:.2f} (expect 2)")
        return "\n".join(rows)


def _fit_slope(hs: Sequence[float], es: Sequence[float], floor: float) -> float:
    """Least-squares slope of log e against log h over the points above the rounding floor."""
    pts = [(math.log(h), math.log(e)) for h, e in zip(hs, es) if e > floor]
    if len(pts) < 2:
        return float("nan")
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx


def derivative_check(
    loss_fn: Callable[[], Tensor],
    params: Sequence[Tensor],
    grads: Optional[Sequence[Tensor]] = None,
    direction: Optional[Sequence[Tensor]] = None,
    hs: Optional[Sequence[float]] = None,
    seed: int = 0,
) -> DerivativeCheck:
    """Run the Taylor test of seed 000 eq. (13) at the current parameter values.

    Args:
        loss_fn: evaluates F at the current values of ``params`` (no arguments).
        params: the tensors to perturb (restored afterwards).
        grads: the gradient to check; default: autograd of loss_fn (whatever gradient mode
            loss_fn uses, e.g. an adjoint solve).
        direction: v (default: standard normal, seeded, normalised to unit length).
        hs: step sizes (default 2^0 … 2^-19 relative to the parameters' scale).
    """
    params = list(params)
    if grads is None:
        loss = loss_fn()
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
    if direction is None:
        gen = torch.Generator().manual_seed(seed)
        direction = [torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype).to(p.device) for p in params]
        nrm = math.sqrt(sum(float((v * v).sum()) for v in direction))
        direction = [v / nrm for v in direction]
    if hs is None:
        hs = [2.0**-k for k in range(20)]
    gv = sum(float((g.detach() * v).sum()) for g, v in zip(grads, direction))
    originals = [p.detach().clone() for p in params]
    e0, e1 = [], []
    try:
        with torch.no_grad():
            f0 = float(loss_fn())
            for h in hs:
                for p, p0, v in zip(params, originals, direction):
                    p.copy_(p0 + h * v)
                fh = float(loss_fn())
                e0.append(abs(fh - f0))
                e1.append(abs(fh - f0 - h * gv))
    finally:
        with torch.no_grad():
            for p, p0 in zip(params, originals):
                p.copy_(p0)
    eps = torch.finfo(params[0].dtype).eps if params else 2.2e-16
    floor = 100 * eps * max(abs(f0), 1.0)
    return DerivativeCheck(list(hs), e0, e1, _fit_slope(hs, e0, floor), _fit_slope(hs, e1, floor))


def plot_derivative_check(check: DerivativeCheck, path: str, title: str = "derivative check") -> None:
    """Log-log plot of E0 and E1 with reference slopes 1 and 2 (seed 000 Fig. 4)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    ax.loglog(check.hs, check.e0, "o-", color="tab:blue", label=f"E0 (slope {check.slope0:.2f})")
    ax.loglog(check.hs, check.e1, "s-", color="tab:red", label=f"E1 (slope {check.slope1:.2f})")
    ax.set_xlabel("h")
    ax.set_ylabel("error")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
