"""Flow matching: train a CNF's field by regression, without a solver in the loop.

Conditional flow matching (Lipman et al. 2023; rectified flow, Liu et al. 2023; OT-CFM, Tong
et al. 2024): draw data x, noise z ~ N(0, I) (paired by the coupling), s ~ U[s_min, 1], the
point x_s on the path and its velocity u_s (`fm_paths`), and minimise

    L = mean || S f(s S, x_s) - u_s ||^2,       S = the flow's total time (sum of block T's),

one network evaluation per step. f is the same net the likelihood CNF integrates (data at
time 0, noise at S), so the trained flow is evaluated (`log_prob`, exact or Hutchinson trace)
and sampled (`sample`, `inverse`) by the CNF code unchanged. A stack of blocks is one field on
[0, S]: block k holds [c_k, c_k + T_k) with its own net at local time t - c_k.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple, Union

import torch
from torch import Tensor

from .cnf import CNF, CNFStack, check_batch
from .fm_coupling import COUPLINGS, assignment_solver, couple
from .fm_paths import make_path


class FlowMatching:
    """The flow-matching objective for a `CNF` or `CNFStack`.

    Args:
        flow: the CNF (or stack) whose nets are trained; its T's are read, never trained here.
        path: 'ot' (linear, with ``sigma_min``; rectified flow at 0) or 'vp' (variance preserving).
        coupling: 'independent' or 'minibatch-ot' (exact assignment within the batch).
        generator: optional torch.Generator for the noise and times (reproducible losses).
    """

    def __init__(
        self,
        flow: Union[CNF, CNFStack],
        path: str = "ot",
        coupling: str = "independent",
        sigma_min: float = 0.0,
        generator: Optional[torch.Generator] = None,
    ) -> None:
        if not isinstance(flow, (CNF, CNFStack)):
            raise TypeError(f"flow must be a CNF or CNFStack; got {type(flow).__name__}")
        if coupling not in COUPLINGS:
            raise ValueError(f"unknown coupling {coupling!r}; valid: {', '.join(COUPLINGS)}")
        if coupling == "minibatch-ot":
            assignment_solver()  # import it now (a clear error early, no import inside a timed step)
        self.flow, self.coupling, self.generator = flow, coupling, generator
        self.path = make_path(path, sigma_min)
        self.blocks: List[CNF] = flow.cnfs if isinstance(flow, CNFStack) else [flow]

    def _ends(self) -> Tuple[List[float], float]:
        starts, total = [], 0.0
        for block in self.blocks:
            starts.append(total)
            total += float(block.T.detach())
        return starts, total

    @property
    def total_time(self) -> float:
        return self._ends()[1]

    def field(self, t: Tensor, x: Tensor) -> Tensor:
        """f(t, x) of the whole flow for one time per sample, t [batch] in [0, S]."""
        if len(self.blocks) == 1:
            return self.blocks[0].net(t, x)
        starts, _ = self._ends()
        out = torch.zeros_like(x)
        last = len(self.blocks) - 1
        for k, block in enumerate(self.blocks):
            hi = starts[k] + float(block.T.detach())
            mask = (t >= starts[k]) & ((t < hi) if k < last else torch.ones_like(t, dtype=torch.bool))
            idx = mask.nonzero().reshape(-1)
            if idx.numel():
                out = out.index_put((idx,), block.net(t[idx] - starts[k], x[idx]))
        return out

    def loss(self, x: Tensor) -> Tuple[Tensor, Dict[str, Tensor]]:
        """(L, parts) for a data batch x [batch, dim]; parts: fm_loss (detached)."""
        check_batch(x, self.blocks[0].dim)
        n = x.shape[0]
        z = torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=self.generator)
        z = couple(x, z, self.coupling)
        s_min = self.path.s_min
        s = torch.rand(n, dtype=x.dtype, device=x.device, generator=self.generator)
        if s_min:
            s = s_min + (1 - s_min) * s
        xs, us = self.path.point_and_velocity(x, z, s)
        S = self.total_time
        if S == 1.0:  # the common T = 1: no rescaling ops in the step
            loss = ((self.field(s, xs) - us) ** 2).mean()
        else:
            loss = ((S * self.field(s * S, xs) - us) ** 2).mean()
        return loss, dict(fm_loss=loss.detach())
