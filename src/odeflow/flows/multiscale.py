"""The multiscale image CNF of FFJORD / RNODE (Grathwohl et al. 2019; Finlay et al. 2020, seed 001
§6; the Real NVP multiscale layout of Dinh et al. 2017), with TO-FLOW end times (seed 004).

For x in [0, 1]^(C x H x W) (dequantized pixels):
    y = logit(alpha + (1 - 2 alpha) x)                          log-det from `logit_transform`
    for scale s = 0 .. S-1 (shape c, h, w; S from `n_scales`):
        `blocks` CNF blocks on (c, h, w)
        if s < S - 1: squeeze -> (4c, h/2, w/2); `blocks` CNF blocks; factor out the last 2c
                      channels as latents z_s (they leave the flow); go on with the first 2c
    z = [z_0, ..., z_{S-2}, final state] flattened (D numbers), and
    log p(x) = log N(z; 0, I) + log|det dy/dx| - sum_blocks l_b(T_b),
with l_b = -int tr(df_b/dz) dt of each block (`odeflow.flows.CNF`). Each block's net is a
`ConvODENet` (3x3 convs, softplus, 64 hidden, t as a channel, weights piecewise constant in
time); divergence Gaussian Hutchinson with one noise draw per solve for training, exact for
checks. `loss` = bits/dim + sum_b (lambda_K E_b + lambda_J n_b) (RNODE; per-dimension
integrals as in the reference code). With ``train_T`` every block's end time is a parameter
(TO-FLOW); its gradient comes from the same backward pass as theta's (`ImageEndTimes`).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple, Union, cast

import torch
from torch import Tensor, nn

from ..nn.conv import ConvODENet
from ..nn.reversed_time import ReversedTime
from ..solvers.stepping import Adaptive, FixedStep
from .cnf import CNF, standard_normal_logprob
from .image_transforms import bits_per_dim, logit_inverse, logit_transform, squeeze, unsqueeze

StepControl = Union[FixedStep, Adaptive]


def n_scales(height: int, width: int) -> int:
    """FFJORD's rule: one more scale while both sides are >= 4 and halve (28 -> 3, 32 -> 4, 8 -> 2)."""
    n = 0
    while height >= 4 and width >= 4:
        n, height, width = n + 1, height // 2, width // 2
    return max(n, 1)


class MultiscaleCNF(nn.Module):
    """log p(x) of images x [B, C, H, W] in [0, 1] through logit, multiscale CNF blocks and N(0, I).

    Args:
        shape: (C, H, W). scales: number of scales (default `n_scales(H, W)`); H and W must be
            divisible by 2^(scales - 1).
        blocks: CNF blocks before and after each squeeze; 1 gives the parameter counts of TO-FLOW
            Table 1 (400,318 on MNIST, 679,434 on CIFAR-10 with one piece).
        hidden, activation, pieces: the ODE net of every block (`ConvODENet`).
        T: end time of every block (trainable with ``train_T``).
        alpha: logit transform; None leaves the logit out (the flow then acts on [0, 1] directly).
        divergence, noise, method, step, adjoint, kinetic, jacobian: as `odeflow.flows.CNF`.
        net_time: 't', or 'reversed': every block's net reads T - t (`ReversedTime`; fixed T only).
    """

    def __init__(
        self,
        shape: Sequence[int],
        scales: Optional[int] = None,
        blocks: int = 1,
        hidden: Sequence[int] = (64, 64, 64),
        activation: str = "softplus",
        pieces: int = 1,
        T: float = 1.0,
        train_T: bool = False,
        alpha: Optional[float] = 1e-6,
        divergence: str = "hutchinson",
        noise: str = "gaussian",
        method: str = "rk4",
        step: Optional[StepControl] = None,
        adjoint: bool = False,
        kinetic: float = 0.0,
        jacobian: float = 0.0,
        zero_init: bool = True,
        net_time: str = "t",
    ) -> None:
        super().__init__()
        if len(shape) != 3:
            raise ValueError(f"shape must be (C, H, W); got {tuple(shape)}")
        c, h, w = (int(v) for v in shape)
        scales = n_scales(h, w) if scales is None else int(scales)
        if scales < 1 or h % 2 ** (scales - 1) or w % 2 ** (scales - 1):
            raise ValueError(
                f"{scales} scales need H and W divisible by 2^{max(scales - 1, 0)}; got shape {tuple(shape)}"
            )
        if blocks < 1:
            raise ValueError(f"blocks must be >= 1; got {blocks}")
        if net_time not in ("t", "reversed"):
            raise ValueError(f"unknown net_time {net_time!r}; valid: t, reversed")
        if net_time == "reversed" and train_T:
            raise ValueError("net_time 'reversed' reads the net at T - t for a fixed T; drop train_T or net_time")
        self.shape, self.n_scale, self.alpha = (c, h, w), scales, alpha
        self.dim = c * h * w
        step = step if step is not None else FixedStep(0.25)

        def block(size: Tuple[int, int, int]) -> CNF:
            net = ConvODENet(size, hidden, activation, pieces=pieces, T0=T, zero_init=zero_init)
            field: nn.Module = ReversedTime(net, T) if net_time == "reversed" else net
            return CNF(
                field,
                net.dim,
                T=T,
                train_T=train_T,
                divergence=divergence,
                noise=noise,
                method=method,
                step=step,
                adjoint=adjoint,
                kinetic=kinetic,
                jacobian=jacobian,
            )

        self.pre, self.post = nn.ModuleList(), nn.ModuleList()
        self.sizes: List[Tuple[int, int, int]] = []
        for s in range(scales):
            self.sizes.append((c, h, w))
            self.pre.append(nn.ModuleList(block((c, h, w)) for _ in range(blocks)))
            if s < scales - 1:
                c, h, w = 4 * c, h // 2, w // 2
                self.post.append(nn.ModuleList(block((c, h, w)) for _ in range(blocks)))
                c = c // 2
        self.config = dict(
            shape=list(shape),
            scales=scales,
            blocks=blocks,
            hidden=list(hidden),
            activation=activation,
            pieces=pieces,
            T=T,
            train_T=train_T,
            alpha=alpha,
            divergence=divergence,
            noise=noise,
            method=method,
            adjoint=adjoint,
            kinetic=kinetic,
            jacobian=jacobian,
            zero_init=zero_init,
            net_time=net_time,
        )

    # --- structure ------------------------------------------------------------------------------
    @staticmethod
    def _blocks(group: nn.Module) -> List[CNF]:
        """The CNF blocks of one group of `pre` / `post` (typed: nn.ModuleList's stub yields Modules)."""
        return cast(List[CNF], list(cast(nn.ModuleList, group)))

    @property
    def cnfs(self) -> List[CNF]:
        return [b for group in list(self.pre) + list(self.post) for b in self._blocks(group)]

    def end_times(self) -> List[Tensor]:
        return [b.T for b in self.cnfs]

    def theta(self) -> List[nn.Parameter]:
        """Every parameter except the end times (for the theta optimizer)."""
        ends = {id(t) for t in self.end_times()}
        return [p for p in self.parameters() if id(p) not in ends]

    def set_solver(self, method: str, step: StepControl) -> None:
        for b in self.cnfs:
            b.set_solver(method, step)

    @property
    def nfe(self) -> Tuple[int, int]:
        """(forward, backward) function evaluations of the last pass, summed over blocks."""
        stats = [b.last_stats for b in self.cnfs]
        return sum(s.nfe for s in stats), sum(s.nfe_backward for s in stats)

    # --- densities ------------------------------------------------------------------------------
    def _check(self, x: Tensor) -> None:
        if not isinstance(x, Tensor) or x.dim() != 4 or tuple(x.shape[1:]) != self.shape:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"images must have shape [batch, {', '.join(map(str, self.shape))}]; got {got}")
        if not x.dtype.is_floating_point:
            raise TypeError(f"images must be floats in [0, 1] (dequantize uint8 pixels first); got {x.dtype}")

    def _run(self, x: Tensor, regularize: bool, logdets: bool = True) -> Dict[str, Tensor]:
        """Forward pass: latent z [B, D], log-det of x -> z [B], RNODE integrals summed over blocks
        (``logdets=False``: z alone, each block solving for its state only)."""
        self._check(x)
        b = x.shape[0]
        logdet = torch.zeros(b, dtype=x.dtype, device=x.device)
        kinetic = torch.zeros_like(logdet)
        jacobian = torch.zeros_like(logdet)
        if self.alpha is not None:
            x, logdet = logit_transform(x, self.alpha)
        latents: List[Tensor] = []

        def flow(group: nn.Module, h: Tensor) -> Tensor:
            nonlocal logdet, kinetic, jacobian
            size = h.shape[1:]
            z = h.reshape(b, -1)
            for cnf in self._blocks(group):
                if not logdets:
                    z = cnf.push_forward(z)
                    continue
                out = cnf.integrate(z, regularize=regularize and cnf.regularized)
                z, logdet = out[0], logdet - out[1]
                if len(out) == 4:
                    kinetic = kinetic + cnf.kinetic * out[2]
                    jacobian = jacobian + cnf.jacobian * out[3]
            return z.reshape(b, *size)

        h = x
        for s in range(self.n_scale):
            h = flow(self.pre[s], h)
            if s < self.n_scale - 1:
                h = flow(self.post[s], squeeze(h))
                keep = h.shape[1] // 2
                latents.append(h[:, keep:].reshape(b, -1))
                h = h[:, :keep]
        latents.append(h.reshape(b, -1))
        return dict(z=torch.cat(latents, dim=1), logdet=logdet, kinetic=kinetic, jacobian=jacobian)

    def transform(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """x -> (z [B, D], l [B]) with l = -log|det dz/dx| (the `CNF.transform` convention)."""
        out = self._run(x, regularize=False)
        return out["z"], -out["logdet"]

    def push_forward(self, x: Tensor) -> Tensor:
        """x -> z [B, D] without the log-determinants (cheaper; for inverse checks and Jacobians)."""
        return self._run(x, regularize=False, logdets=False)["z"]

    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x) in nats for x in [0, 1]^(C x H x W); bits/dim via `bits_per_dim(log_prob, D)`."""
        out = self._run(x, regularize=False)
        return standard_normal_logprob(out["z"]) + out["logdet"]

    def bits_per_dim(self, x: Tensor) -> Tensor:
        """Per-sample bits/dim of dequantized 8-bit images."""
        return bits_per_dim(self.log_prob(x), self.dim)

    def loss(self, x: Tensor) -> Tuple[Tensor, Dict[str, Tensor]]:
        """Training loss: mean bits/dim + sum_b (lambda_K E_b + lambda_J n_b) (RNODE's reference
        objective). parts: bits_per_dim, nll (nats), kinetic, jacobian (weighted sums), detached;
        ``nll_bpd`` keeps the graph (for an end-time step on the NLL alone)."""
        out = self._run(x, regularize=True)
        log_p = standard_normal_logprob(out["z"]) + out["logdet"]
        bpd = bits_per_dim(log_p, self.dim).mean()
        kin, jac = out["kinetic"].mean(), out["jacobian"].mean()
        loss = bpd + kin + jac
        return loss, dict(
            bits_per_dim=bpd.detach(),
            nll=-log_p.mean().detach(),
            kinetic=kin.detach(),
            jacobian=jac.detach(),
            nll_bpd=bpd,
        )

    # --- sampling -------------------------------------------------------------------------------
    def inverse(self, z: Tensor) -> Tensor:
        """Latents z [B, D] -> images [B, C, H, W] in [0, 1] (through the logit's inverse)."""
        if z.dim() != 2 or z.shape[1] != self.dim:
            raise ValueError(f"latents must have shape [batch, {self.dim}]; got {tuple(z.shape)}")
        b = z.shape[0]
        chunks: List[Tensor] = []
        offset = 0
        for s in range(self.n_scale - 1):
            c_s, h_s, w_s = self.sizes[s]
            n = 2 * c_s * (h_s // 2) * (w_s // 2)
            chunks.append(z[:, offset : offset + n])
            offset += n
        h = z[:, offset:].reshape(b, *self.sizes[-1])

        def back(group: nn.Module, v: Tensor) -> Tensor:
            size = v.shape[1:]
            flat = v.reshape(b, -1)
            for cnf in reversed(self._blocks(group)):
                flat = cnf.inverse(flat)
            return flat.reshape(b, *size)

        for s in reversed(range(self.n_scale)):
            if s < self.n_scale - 1:
                factored = chunks[s].reshape(b, h.shape[1], *h.shape[2:])
                h = unsqueeze(back(self.post[s], torch.cat([h, factored], dim=1)))
            h = back(self.pre[s], h)
        return logit_inverse(h, self.alpha) if self.alpha is not None else h

    def sample(self, n: int, generator: Optional[torch.Generator] = None, temperature: float = 1.0) -> Tensor:
        p = next(self.parameters())
        z = (
            torch.randn(
                n,
                self.dim,
                dtype=p.dtype,
                generator=generator,
                device=generator.device if generator is not None else p.device,
            ).to(p.device)
            * temperature
        )
        return self.inverse(z)


class ImageEndTimes:
    """TO-FLOW for every block of a `MultiscaleCNF` built with ``train_T=True`` (seed 004, Algorithm 1:
    one solve, then a theta step and a T step). The T gradient is the one the backward pass of
    the iteration left in T.grad (dL/dT through the fixed-count Disc-Opt grid; exact for the
    discrete flow, including the effect of T_b on the later blocks). step():
    T <- clip(Adam_lr(T, grad + alpha sign(T))) into [eps, 2 T0 - eps]."""

    def __init__(self, flow: MultiscaleCNF, lr: float = 1e-2, alpha: float = 0.1, eps: float = 0.1) -> None:
        self.params = flow.end_times()
        if not all(isinstance(p, nn.Parameter) for p in self.params):
            raise ValueError("the flow's end times are fixed; build MultiscaleCNF(train_T=True) to learn them")
        T0 = float(self.params[0].detach())
        self.low, self.high = eps, 2 * T0 - eps
        if not self.low < T0 < self.high:
            raise ValueError(f"clipping interval [{self.low}, {self.high}] must contain T0 = {T0}; use eps < T0")
        self.alpha = alpha
        self.opt = torch.optim.Adam(self.params, lr=lr)

    def step(self) -> None:
        for p in self.params:
            grad = p.grad if p.grad is not None else torch.zeros_like(p)
            p.grad = grad + self.alpha * torch.sign(p.detach())
        self.opt.step()
        with torch.no_grad():
            for p in self.params:
                p.clamp_(self.low, self.high)
                p.grad = None

    def values(self) -> List[float]:
        return [float(p.detach()) for p in self.params]

    def mean(self) -> float:
        return float(sum(self.values()) / max(len(self.params), 1))


__all__ = ["MultiscaleCNF", "ImageEndTimes", "n_scales"]
