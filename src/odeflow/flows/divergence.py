"""The divergence tr(df/dz) that drives the log-density in a CNF (Chen et al. 2018, seed 003;
Grathwohl et al. 2019).

exact:      sum_i d f_i / d z_i, one vector-Jacobian product per dimension.
            The rows of J also give ||J||_F^2 exactly (RNODE), at no further cost.
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


def divergence_hutchinson(f: Tensor, z: Tensor, e: Tensor, create_graph: bool) -> Tuple[Tensor, Tensor]:
    """(e^T J e, e^T J) per sample for the noise e."""
    (eJ,) = torch.autograd.grad(f, z, e, create_graph=create_graph, retain_graph=True)
    return (eJ * e).sum(dim=1), eJ


def sample_noise(like: Tensor, kind: str, generator: "torch.Generator | None" = None,
                 shard: "Tuple[int, slice] | None" = None) -> Tensor:
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
