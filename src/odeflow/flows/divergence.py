"""The divergence tr(df/dz) that drives the log-density in a CNF (Chen et al. 2018, seed 003;
Grathwohl et al. 2019).

exact:      sum_i d f_i / d z_i from the D rows of J. `trace_and_frobenius_batched` gets all rows
            in one batched vector-Jacobian product (autograd with is_grads_batched, i.e. vmap over
            the D basis vectors); `trace_and_frobenius_exact` is the reference loop, one VJP per
            dimension. The rows of J also give ||J||_F^2 exactly (RNODE), at no further cost.
Hutchinson: tr(J) ~ e^T J e with E[e e^T] = I (Gaussian or Rademacher e), one VJP per call;
            e is drawn once per solve and shared by all stages. e^T J is returned too, so the
            RNODE Jacobian penalty ||e^T J||^2 costs no further VJP.
f, z: [batch, dim]; results: [batch].
"""

from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor

NOISES = ("gaussian", "rademacher")


def divergence_exact(f: Tensor, z: Tensor, create_graph: bool) -> Tensor:
    """Exact trace of df/dz per sample."""
    return trace_and_frobenius_exact(f, z, create_graph)[0]


def trace_and_frobenius_exact(f: Tensor, z: Tensor, create_graph: bool) -> Tuple[Tensor, Tensor]:
    """(tr J, ||J||_F^2) per sample from the D rows of J, one VJP each; the Frobenius norm
    (RNODE's Jacobian penalty) comes from the same rows, so it costs no extra VJP."""
    div = torch.zeros(f.shape[0], dtype=f.dtype, device=f.device)
    frob = torch.zeros_like(div)
    for i in range(f.shape[1]):
        (g,) = torch.autograd.grad(f[:, i].sum(), z, create_graph=create_graph, retain_graph=True)
        div = div + g[:, i]
        frob = frob + (g * g).sum(dim=1)
    return div, frob


def jacobian_rows(f: Tensor, z: Tensor, create_graph: bool) -> Tensor:
    """J[b, i, j] = d f_i / d z_j per sample: the D vector-Jacobian products e_i^T J batched by
    vmap (no Python loop over dimensions). f, z: [batch, dim] -> [batch, dim, dim]; f must be
    computed per sample (row b of f depends on row b of z only)."""
    batch, dim = f.shape
    basis = torch.eye(dim, dtype=f.dtype, device=f.device).unsqueeze(1).expand(dim, batch, dim)
    (rows,) = torch.autograd.grad(f, z, basis, create_graph=create_graph, retain_graph=True, is_grads_batched=True)
    return rows.transpose(0, 1)


def trace_and_frobenius_batched(f: Tensor, z: Tensor, create_graph: bool) -> Tuple[Tensor, Tensor]:
    """(tr J, ||J||_F^2) per sample from all rows of J at once; equals `trace_and_frobenius_exact`."""
    J = jacobian_rows(f, z, create_graph)
    return J.diagonal(dim1=1, dim2=2).sum(dim=1), (J * J).sum(dim=(1, 2))


def divergence_hutchinson(f: Tensor, z: Tensor, e: Tensor, create_graph: bool) -> Tuple[Tensor, Tensor]:
    """(e^T J e, e^T J) per sample for the noise e."""
    (eJ,) = torch.autograd.grad(f, z, e, create_graph=create_graph, retain_graph=True)
    return (eJ * e).sum(dim=1), eJ


def sample_noise(
    like: Tensor, kind: str, generator: torch.Generator | None = None, shard: Tuple[int, slice] | None = None
) -> Tensor:
    """Noise shaped like ``like``. With ``shard = (n, rows)`` the noise of a global batch of n is
    drawn and its ``rows`` kept: the ranks of a data-parallel run then use, together, exactly
    the noise one process would draw for the whole batch."""
    shape = like.shape if shard is None else (shard[0],) + tuple(like.shape[1:])
    if kind == "gaussian":
        e = torch.randn(shape, dtype=like.dtype, device=like.device, generator=generator)
    elif kind == "rademacher":
        e = (2 * torch.randint(0, 2, shape, device=like.device, generator=generator) - 1).to(like.dtype)
    else:
        raise ValueError(f"unknown noise {kind!r}; valid: {', '.join(NOISES)}")
    return e if shard is None else e[shard[1]]
