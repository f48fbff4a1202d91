"""Small matrix products as fused loops inside odeflow's compiled solvers.

Inductor hands every matrix product to ATen: a library call through the dispatcher, with its own
allocation, conjugation checks and copy of the bias. For the products of a small vector field (the
seed-000 spiral's 2-50-2 MLP on one state: a 1×2 by 2×50 product, then 1×50 by 50×2) that call
costs several times the arithmetic, and a compiled Runge–Kutta step is mostly such calls.

While odeflow compiles a solver, a product ``A @ B`` (A: M×K, B: K×N, float32 or float64, on the
CPU) with M·K·N ≤ ``SMALL_MATMUL_LIMIT`` is written as a broadcast product and a sum,

    (A @ B)[m, n] = Σ_k A[m, k] B[k, n]  =  sum(A[:, :, None] * B[None, :, :], dim=1),

which Inductor fuses with the pointwise work around it (activations, the stage sums of the
Runge–Kutta step) into its own C++ loops; the backward pass is decomposed the same way. Larger
products still go to ATen's BLAS, where the call's cost is small next to the arithmetic. The
change is scoped to odeflow's own compiles (`fused_small_matmuls`), never to a user's
``torch.compile``. Values differ from BLAS only by the order of the sum.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import Any, Callable, Dict, Iterator, Optional

import torch
from torch import Tensor

log = logging.getLogger(__name__)
aten = torch.ops.aten

SMALL_MATMUL_LIMIT = 2048
"""Largest M·K·N written as fused loops (see the module docstring and benchmarks/RESULTS.md)."""

_DTYPES = (torch.float32, torch.float64)


def is_small(a: Tensor, b: Tensor, limit: int) -> bool:
    """Whether ``a @ b`` (2-D, CPU, float32/float64, the same dtype) is at most ``limit`` multiply-adds."""
    if a.dim() != 2 or b.dim() != 2 or a.dtype != b.dtype or a.dtype not in _DTYPES:
        return False
    if a.device.type != "cpu" or b.device.type != "cpu":
        return False
    try:
        m, k, n = int(a.shape[0]), int(a.shape[1]), int(b.shape[1])
    except (TypeError, RuntimeError):  # symbolic sizes: leave the product to ATen
        return False
    return m * k * n <= limit


def _product(a: Tensor, b: Tensor) -> Tensor:
    return (a.unsqueeze(-1) * b.unsqueeze(0)).sum(dim=1)


def _mm(fallback: Optional[Callable], limit: int, a: Tensor, b: Tensor, *args: Any, **kwargs: Any) -> Any:
    if not args and not kwargs and is_small(a, b, limit):
        return _product(a, b)
    return fallback(a, b, *args, **kwargs) if fallback is not None else NotImplemented


def _addmm(
    fallback: Optional[Callable], limit: int, bias: Tensor, a: Tensor, b: Tensor, *args: Any, **kwargs: Any
) -> Any:
    beta, alpha = kwargs.get("beta", 1), kwargs.get("alpha", 1)
    plain = not args and set(kwargs) <= {"beta", "alpha"} and bias.dtype == a.dtype
    if plain and is_small(a, b, limit):
        out = _product(a, b)
        if alpha != 1:
            out = out * alpha
        return out + (bias if beta == 1 else bias * beta)
    return fallback(bias, a, b, *args, **kwargs) if fallback is not None else NotImplemented


@contextlib.contextmanager
def fused_small_matmuls(limit: int = SMALL_MATMUL_LIMIT) -> Iterator[None]:
    """Within the block, Inductor compiles small products as fused loops (see the module docstring).

    Patches the decomposition table Inductor reads when it compiles, and restores it on exit;
    on a torch whose Inductor has no such table it does nothing."""
    try:
        from torch._inductor.decomposition import select_decomp_table

        table: Dict[Any, Callable] = select_decomp_table()
    except (ImportError, AttributeError) as e:  # pragma: no cover - depends on the installed torch
        log.debug("odeflow: small products left to ATen (%s)", e)
        yield
        return
    ops: Dict[Any, Callable[..., Any]] = {aten.mm.default: _mm, aten.addmm.default: _addmm}
    missing = object()
    previous = {op: table.get(op, missing) for op in ops}
    try:
        for op, decomposition in ops.items():
            table[op] = functools.partial(decomposition, table.get(op), limit)
        yield
    finally:
        for op, old in previous.items():
            if old is missing:
                table.pop(op, None)
            else:
                table[op] = old  # type: ignore[assignment]
