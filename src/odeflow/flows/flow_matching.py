"""Flow matching: train a CNF's field by regression, without a solver in the loop.

Conditional flow matching (Lipman et al. 2023; rectified flow, Liu et al. 2023; OT-CFM, Tong
et al. 2024): draw data x, noise z ~ N(0, I) (paired by the coupling), s ~ U[s_min, 1], the
point x_s on the path and its velocity u_s (`fm_paths`), and minimise

    L = mean || S f(s S, x_s) - u_s ||^2,       S = the flow's total time (sum of block T's),

one network evaluation per step. f is the same net the likelihood CNF integrates (data at
time 0, noise at S), so the trained flow is evaluated (`log_prob`, exact or Hutchinson trace)
and sampled (`sample`, `inverse`) by the CNF code unchanged. A stack of blocks is one field on
[0, S]: block k holds [c_k, c_k + T_k) with its own net at local time t - c_k.

A single-scale `MultiscaleCNF` (images) is such a stack on the logit of the images: x above is
y = logit(alpha + (1 - 2 alpha) x) flattened, so log p(x) = log p_Y(y) + log|dy/dx| stays exact.
With more than one scale, dimensions leave the flow between scales (each factored-out half must
be N(0, I) on its own while the kept half flows on), so there is no single data-to-noise path to
regress on: such a model is refused (build it with one scale).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from .cnf import CNF, CNFStack, check_batch
from .fm_coupling import COUPLINGS, assignment_solver, couple
from .fm_paths import make_path
from .image_transforms import logit_transform
from .multiscale import MultiscaleCNF


class FlowMatching:
    """The flow-matching objective for a `CNF`, a `CNFStack` or a single-scale `MultiscaleCNF`.

    Args:
        flow: the CNF (or stack, or one-scale image CNF) whose nets are trained; its T's are read,
            never trained here.
        path: 'ot' (linear, with ``sigma_min``; rectified flow at 0) or 'vp' (variance preserving).
        coupling: 'independent' or 'minibatch-ot' (exact assignment within the batch).
        generator: optional torch.Generator for the noise and times (reproducible losses).
    """

    def __init__(
        self,
        flow: Union[CNF, CNFStack, MultiscaleCNF],
        path: str = "ot",
        coupling: str = "independent",
        sigma_min: float = 0.0,
        generator: Optional[torch.Generator] = None,
    ) -> None:
        if not isinstance(flow, (CNF, CNFStack, MultiscaleCNF)):
            raise TypeError(f"flow must be a CNF, CNFStack or MultiscaleCNF; got {type(flow).__name__}")
        if isinstance(flow, MultiscaleCNF) and flow.n_scale != 1:
            raise ValueError(
                f"flow matching trains a single-scale image CNF; this one has {flow.n_scale} scales, which "
                "factor dimensions out between scales (no single data-to-noise path): build it with "
                "scales=1 (odeflow train image --scales 1)"
            )
        if coupling not in COUPLINGS:
            raise ValueError(f"unknown coupling {coupling!r}; valid: {', '.join(COUPLINGS)}")
        if coupling == "minibatch-ot":
            assignment_solver()  # import it now (a clear error early, no import inside a timed step)
        self.flow, self.coupling, self.generator = flow, coupling, generator
        self.path = make_path(path, sigma_min)
        self.blocks: List[CNF] = flow.cnfs if isinstance(flow, (CNFStack, MultiscaleCNF)) else [flow]

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

    def data_end(self, x: Tensor) -> Tensor:
        """The state at s = 0 for data x: x itself, or for images [B, C, H, W] the flattened logit."""
        flow = self.flow
        if isinstance(flow, MultiscaleCNF):
            flow._check(x)
            y = logit_transform(x, flow.alpha)[0] if flow.alpha is not None else x
            return y.reshape(x.shape[0], -1)
        return x

    def loss(self, x: Tensor) -> Tuple[Tensor, Dict[str, Tensor]]:
        """(L, parts) for a data batch x [batch, dim] (images: [batch, C, H, W]); parts: fm_loss
        (detached)."""
        x = self.data_end(x)
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
            loss = F.mse_loss(self.field(s, xs), us)  # the mean of the squares: one fused op
        else:
            loss = F.mse_loss(S * self.field(s * S, xs), us)
        return loss, dict(fm_loss=loss.detach())
