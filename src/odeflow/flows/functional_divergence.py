"""CNF dynamics through torch.func, for `solve(..., compile=True)`.

The same augmented field as `CNF._augmented`, (f, -tr J[, E', n']) (Chen et al. 2018, seed 003;
Grathwohl et al. 2019; RNODE, Finlay et al. 2020, seed 001), but with the vector-Jacobian
products of the divergence taken by torch.func.vjp (and vmap over the D basis vectors for the
exact trace) instead of torch.autograd.grad, which torch.compile cannot trace:

exact:      rows e_i^T J for all i at once (vmap of the VJP), tr J = sum_i (e_i^T J)_i,
            ||J||_F^2 = sum_i |e_i^T J|^2, n' = ||J||_F^2 / D;
Hutchinson: e^T J from one VJP, tr J ~ e^T J e, n' = mean_i (e^T J)_i^2;
kinetic:    E' = 0.5 mean_i f_i^2.

The module is an nn.Module whose parameters are the network's, so the compiled adjoint
(`functional_aug_dynamics`) can differentiate it by torch.func.functional_call. Outside
autograd (log-probabilities under no_grad) it is the same function; results equal the
autograd path to rounding.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor, nn


def trace_and_frobenius_func(net: nn.Module, t: Tensor, z: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """(f, tr J, ||J||_F^2) per sample, all rows of J from one vmapped torch.func.vjp.
    z: [batch, dim]; f must act per sample (row b of f depends on row b of z only)."""
    batch, dim = z.shape
    f, pull = torch.func.vjp(lambda z_: net(t, z_), z)  # type: ignore[misc]  # stub: always 3 outputs; 2 without has_aux
    basis = torch.eye(dim, dtype=z.dtype, device=z.device).unsqueeze(1).expand(dim, batch, dim)
    (rows,) = torch.func.vmap(pull)(basis)  # rows[i, b, :] = e_i^T J_b
    return f, rows.diagonal(dim1=0, dim2=2).sum(dim=1), (rows * rows).sum(dim=(0, 2))


def hutchinson_func(net: nn.Module, t: Tensor, z: Tensor, e: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """(f, e^T J e, e^T J) per sample from one torch.func.vjp with the noise e."""
    f, pull = torch.func.vjp(lambda z_: net(t, z_), z)  # type: ignore[misc]  # stub: always 3 outputs; 2 without has_aux
    (eJ,) = pull(e)
    return f, (eJ * e).sum(dim=1), eJ


class CNFDynamics(nn.Module):
    """z' = f(t, z), l' = -tr J, and with ``regularize`` E' and n' (see module docstring).

    ``noise`` (Hutchinson) is set before every solve; it is a buffer, so a compiled solve reads
    the new noise as an input instead of baking it into the graph."""

    def __init__(self, net: nn.Module, dim: int, divergence: str, regularize: bool) -> None:
        super().__init__()
        if divergence not in ("exact", "hutchinson"):
            raise ValueError(f"unknown divergence {divergence!r}; valid: exact, hutchinson")
        self.net, self.dim, self.divergence, self.regularize = net, dim, divergence, regularize
        self.register_buffer("noise", None, persistent=False)

    def set_noise(self, e: Optional[Tensor]) -> None:
        self.noise = e

    def forward(self, t: Tensor, state: Tuple[Tensor, ...]) -> Tuple[Tensor, ...]:
        z = state[0]
        if self.divergence == "exact":
            f, div, frob = trace_and_frobenius_func(self.net, t, z)
            frob = frob / self.dim
        else:
            if self.noise is None or self.noise.shape != z.shape:
                got = None if self.noise is None else tuple(self.noise.shape)
                raise ValueError(
                    f"Hutchinson noise must have the state's shape {tuple(z.shape)}; got {got}. "
                    "Call set_noise(e) before solving"
                )
            f, div, eJ = hutchinson_func(self.net, t, z, self.noise)
            frob = (eJ * eJ).mean(dim=1)
        if self.regularize:
            return f, -div, 0.5 * (f * f).mean(dim=1), frob
        return f, -div
