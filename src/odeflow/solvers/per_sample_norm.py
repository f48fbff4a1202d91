"""Each row's error norm in a per-sample solve, as the shared-step `state.ErrorNorm` computes it for one sample.

With r_b = err_b / (atol + rtol max(|y_b|, |y1_b|)) (Hairer I, eq. 4.11):
    plain:    ||r_b|| = sqrt(mean_i r_bi^2)
    weights:  ||r_b|| = sqrt(sum_i w_bi r_bi^2 / sum_i w_bi)     (w_bi = 0 leaves element i out)
    norm=fn:  ||r_b|| = |fn(r_b[None])|   (fn sees one row shaped [1, ...], as when solving it alone)
Weights are one tensor: one value per element of a row (shared by the rows) or one row of
weights per sample ([batch, ...]).
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor

from .per_sample import _rms
from .stepping import Adaptive


class SampleNorm:
    """``norm(ratio [n, ...], idx)`` -> [n] float64: the error norm of the rows ``idx`` (all: None)."""

    def __init__(self, step: Adaptive, y0: Tensor) -> None:
        self.fn: Optional[Callable] = step.norm
        self.weights: Optional[Tensor] = None
        if step.weights is not None:
            self.weights = _weights(step.weights, y0)
        self.plain = self.fn is None and self.weights is None
        self._vmap_ok = True

    def __call__(self, ratio: Tensor, idx: Optional[Tensor] = None) -> Tensor:
        if self.fn is not None:
            return self._user(ratio)
        if self.weights is None:
            return _rms(ratio)
        w = self.weights if (self.weights.shape[0] == 1 or idx is None) else self.weights.index_select(0, idx)
        r = ratio.reshape(ratio.shape[0], -1).to(torch.float64)
        return ((r * r * w).sum(dim=1) / w.sum(dim=1)).sqrt()

    def _user(self, ratio: Tensor) -> Tensor:
        """fn on every row as [1, ...]: vmapped, or row by row where fn cannot be vmapped."""
        fn = self.fn
        assert fn is not None
        if self._vmap_ok:
            try:
                out = torch.vmap(lambda r: torch.as_tensor(fn(r.unsqueeze(0))))(ratio)
                return out.reshape(ratio.shape[0]).to(torch.float64).abs()
            except (RuntimeError, ValueError, TypeError):
                self._vmap_ok = False  # e.g. a host read inside fn
        vals = [torch.as_tensor(fn(ratio[i : i + 1])).reshape(()) for i in range(ratio.shape[0])]
        return torch.stack(vals).to(device=ratio.device, dtype=torch.float64).abs()


def _weights(weights, y0: Tensor) -> Tensor:
    """The weights as float64 [1 or batch, numel of a row], checked."""
    batch, row = y0.shape[0], y0[0].numel()
    if not isinstance(weights, Tensor):
        raise ValueError(
            "per_sample=True takes Adaptive(weights=...) as a tensor: one weight per element of a row "
            f"(shape [{row}] or {tuple(y0.shape[1:])}) or one row of weights per sample (shape {tuple(y0.shape)})"
        )
    w = weights.detach().to(device=y0.device, dtype=torch.float64)
    if w.numel() == row and (w.shape == y0.shape[1:] or w.dim() == 1):
        w = w.reshape(1, row)
    elif w.shape == y0.shape or (w.dim() == 2 and tuple(w.shape) == (batch, row)):
        w = w.reshape(batch, row)
    else:
        raise ValueError(
            f"Adaptive(weights=...) has shape {tuple(weights.shape)}; with per_sample=True give one weight per "
            f"element of a row ([{row}] or {tuple(y0.shape[1:])}) or one row per sample ({tuple(y0.shape)})"
        )
    if bool((w < 0).any()) or not bool(torch.isfinite(w).all()) or bool((w.sum(dim=1) <= 0).any()):
        raise ValueError("Adaptive(weights=...): weights must be finite and >= 0 with at least one positive per row")
    return w
