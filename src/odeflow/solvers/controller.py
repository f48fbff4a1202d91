"""The step-size controller of an adaptive solve, its own object beside the solver's step.

A PI controller (Gustafsson; Hairer & Wanner II §IV.2, Söderlind) with q = min(order, error
order) + 1:

    accept  <=>  err <= 1   (or |h| <= min_step with a finite err, as torchdiffeq)
    after an accepted step:  h_new = h clip(safety err^(-alpha/q) err_prev^(beta/q), min_factor, max_factor)
    after a rejected step:   h_new = h clip(safety err^(-1/q), min_factor, 1)

beta = 0, alpha = 1 is the classical I-controller. `SolverError` when a rejected step cannot
shrink any further. The loops ask it, and nothing else, about h: the adaptive loop with host
floats (`accepted`, `rejected`, `next`), the compiled `while_loop` and the per-sample loops with
tensors (`factors`, `clamp`: every row at once, no host read).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import Tensor

from .errors import SolverError
from .stepping import Adaptive


@dataclass(frozen=True)
class PIController:
    """Step-size decisions from the error norm; ``nonfinite_factor`` shrinks a step whose error
    (or result) was not finite, e.g. a failed Newton iteration."""

    ctrl: Adaptive
    q: int
    alpha: float
    beta: float
    nonfinite_factor: float

    @staticmethod
    def pi(ctrl: Adaptive, order: int, error_order: int) -> PIController:
        """The PI controller with the constants of ``ctrl``."""
        return PIController(ctrl, min(order, error_order) + 1, ctrl.alpha, ctrl.beta, ctrl.min_factor)

    @staticmethod
    def integral(ctrl: Adaptive, order: int, error_order: int) -> PIController:
        """The I-controller (alpha 1, beta 0), halving after a failed step."""
        return PIController(ctrl, min(order, error_order) + 1, 1.0, 0.0, 0.5)

    def first(self, h: float, direction: float) -> float:
        """The first step, signed and within [min_step, max_step]."""
        return self.ctrl.clamp(direction * abs(h))

    def accepts(self, en: float, h: float) -> bool:
        """Whether a step of size h with error norm en is accepted."""
        c = self.ctrl
        return en <= 1.0 or (c.min_step > 0 and abs(h) <= c.min_step and math.isfinite(en))

    def accepted(self, en: float, err_prev: float) -> Tuple[float, float]:
        """(step factor, err_prev for the next step) after an accepted step."""
        c = self.ctrl
        factor = (
            c.max_factor if en == 0.0 else c.safety * en ** (-self.alpha / self.q) * err_prev ** (self.beta / self.q)
        )
        return min(c.max_factor, max(c.min_factor, factor)), max(en, 1e-4)

    def rejected(self, en: float, t: float, h: float) -> float:
        """The shrink factor after a rejected step; SolverError when the step cannot shrink."""
        c = self.ctrl
        nonfinite = not math.isfinite(en)
        factor = self.nonfinite_factor if nonfinite else max(c.min_factor, c.safety * en ** (-1.0 / self.q))
        factor = min(factor, 1.0)
        if abs(h) <= c.min_step or t + h * factor == t:
            why = (
                "the state or its error estimate became non-finite (NaN/inf), or the step's implicit "
                "equations could not be solved: the solution may blow up here; check the vector field or "
                "shorten the time span"
                if nonfinite
                else "the problem may be stiff or singular here; loosen rtol/atol or lower min_step"
            )
            raise SolverError("step size underflow", t, h, why)
        return factor

    def next(self, h: float, factor: float) -> float:
        """The next step: h factor within [min_step, max_step]."""
        return self.ctrl.clamp(h * factor)

    # ---- the same rules on tensors ------------------------------------------------------
    def factors(self, en: Tensor, accept: Tensor, err_prev: Optional[Tensor] = None) -> Tensor:
        """The step factor of every row: `accepted`'s where ``accept``, `rejected`'s elsewhere
        (without the underflow check, which the tensor loops make themselves)."""
        c = self.ctrl
        finite = torch.isfinite(en)
        safe = torch.where(finite, en, torch.zeros_like(en)).clamp_min(1e-300)
        grow = c.safety * safe ** (-self.alpha / self.q)
        if self.beta != 0.0 and err_prev is not None:
            grow = grow * err_prev ** (self.beta / self.q)
        grow = torch.where(en == 0, torch.full_like(grow, c.max_factor), grow).clamp(c.min_factor, c.max_factor)
        shrink = (c.safety * safe ** (-1.0 / self.q)).clamp(min=c.min_factor)
        shrink = torch.where(finite, shrink, torch.full_like(shrink, self.nonfinite_factor)).clamp(max=1.0)
        return torch.where(accept, grow, shrink)

    def clamp(self, h: Tensor) -> Tensor:
        """`next`'s bounds on a tensor of steps: |h| within [min_step, max_step], sign kept."""
        mag = h.abs().clamp(min=self.ctrl.min_step, max=self.ctrl.max_step)
        return torch.where(h < 0, -mag, mag)
