"""A learnable end time T (TO-FLOW, Du et al. 2022, seed 004).

With theta fixed, the loss L(T) = E[ D/2 log 2 pi + |z(T)|^2 / 2 + l(T) ] (+ RNODE terms)
changes with T through the integrand at the end time only:

    dL/dT = E[ z(T) . f(z(T), T) - tr J(T) ] + lambda_K E[E'(T)] + lambda_J E[n'(T)]

(seed 004: -E[grad log p(z(T)) . f] - E[tr J]). One evaluation of f and its divergence at
(T, z(T)) gives it in either gradient mode. T is updated by its own Adam (lr 1e-2) after the
theta step, with the temporal regularization alpha |T| and clipping to
[t0 + eps, 2 T0 - t0 - eps] (alpha = 0.1, eps = 0.1 in the paper).
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor, nn

from .cnf import CNF


def end_time_gradient(flow: CNF, z_T: Tensor, regularizers: bool = True) -> Tensor:
    """dL/dT of `flow.loss` (theta fixed) from the end state z(T) of that loss's solve;
    with ``regularizers=False`` of the NLL part alone.

    A Hutchinson flow reuses the noise of that solve, so the estimate matches the loss's."""
    t = flow.T.detach().to(torch.float64)
    with torch.no_grad():
        f, div, kin, frob = flow.rates(t, z_T.detach(), create=False, regularize=True)
        grad = ((z_T * f).sum(dim=1) - div).mean()
        if regularizers and flow.kinetic > 0:
            grad = grad + flow.kinetic * kin.mean()
        if regularizers and flow.jacobian > 0:
            grad = grad + flow.jacobian * frob.mean()
    return grad


class EndTimeOptimizer:
    """Alternating TO-FLOW update of a CNF's end time (the theta optimizer leaves T alone).

    step(z_T): T <- clip(Adam(T, dL/dT + alpha sign(T))) to [t0 + eps, 2 T0 - t0 - eps].
    ``objective='nll'`` leaves the RNODE integrands out of dL/dT: at fixed theta they always
    push T down (E'(T), n'(T) >= 0), although rescaling time would lower the kinetic energy
    of a longer flow; with 'loss' T collapses towards t0 + eps when RNODE is on.
    """

    def __init__(
        self,
        flow: CNF,
        lr: float = 1e-2,
        alpha: float = 0.1,
        eps: float = 0.1,
        t0: float = 0.0,
        objective: str = "loss",
        reduce: Optional[Callable[[Tensor], Tensor]] = None,
    ) -> None:
        if objective not in ("loss", "nll"):
            raise ValueError(f"unknown end-time objective {objective!r}; valid: loss, nll")
        self.regularizers = objective == "loss"
        if not isinstance(flow.T, nn.Parameter):
            raise ValueError("the flow's end time is fixed; build the CNF with train_T=True to learn it")
        T0 = float(flow.T.detach())
        self.low, self.high = t0 + eps, 2 * T0 - t0 - eps
        if not self.low < T0 < self.high:
            raise ValueError(
                f"clipping interval [{self.low}, {self.high}] must contain T0 = {T0}; "
                f"use eps < T0 - t0 (got eps = {eps})"
            )
        self.flow, self.alpha = flow, alpha
        self.reduce = reduce  # averages dL/dT over data-parallel ranks (each has its shard's mean)
        flow.T.requires_grad_(False)  # theta's backward pass computes no T gradient
        self.opt = torch.optim.Adam([flow.T], lr=lr)

    def step(self, z_T: Tensor) -> float:
        """One update of T; returns the gradient used (including alpha sign(T))."""
        T = self.flow.T
        grad = end_time_gradient(self.flow, z_T, self.regularizers)
        if self.reduce is not None:
            grad = self.reduce(grad).to(grad)
        grad = grad + self.alpha * torch.sign(T.detach())
        T.grad = grad.to(T.dtype).reshape(T.shape)
        self.opt.step()
        with torch.no_grad():
            T.clamp_(self.low, self.high)
        T.grad = None
        return float(grad)
