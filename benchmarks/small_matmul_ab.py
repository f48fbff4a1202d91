"""Compiled solves with small products fused (solvers/small_matmul.py) against ATen products.

Both sides run in one process with the same weights, data and Adam, compiled in-process
(`solve(..., compile=True)`), their iterations interleaved; the time per training iteration is
the process's CPU time (robust to other processes' load on a shared machine), median of N.

    python benchmarks/small_matmul_ab.py --spiral fixed adjoint
    python benchmarks/small_matmul_ab.py --sizes 1,2,50 4,2,50 16,2,50 1,16,128 8,4,32

- ``--spiral``: the seed-000 workloads of peers_cpu.py (2-50-2 tanh on u^3, 30 points, float64):
  ``fixed`` = tsit5, 29 steps, backprop; ``adjoint`` = dopri5 rtol 1e-7 atol 1e-9, backsolve adjoint.
- ``--sizes B,D,W``: a batch of B states of dimension D through a D-W-D tanh MLP, tsit5 with 29
  fixed steps, backprop; the products are B*D*W multiply-adds each.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import statistics
import time
from typing import Callable, Dict

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
from torch import nn  # noqa: E402

import odeflow  # noqa: E402
from odeflow.solvers import compiled  # noqa: E402

F64 = torch.float64
T = torch.linspace(0.0, 1.5, 30, dtype=F64)


class Field(nn.Module):
    """f(u) = W2 tanh(W1 u^3 + b1) + b2 (the seed-000 model for D = 2, W = 50)."""

    def __init__(self, d: int, w: int) -> None:
        super().__init__()
        self.l1, self.l2 = nn.Linear(d, w).to(F64), nn.Linear(w, d).to(F64)

    def forward(self, t, u):
        return self.l2(torch.tanh(self.l1(u**3)))


def _a_b(shape, make_iteration: Callable[[nn.Module], Callable[[], torch.Tensor]], n: int) -> Dict[str, object]:
    """Both sides from one Field(*shape); CPU ms per iteration, interleaved."""
    torch.manual_seed(0)
    base = Field(*shape)
    real, sides = compiled.fused_small_matmuls, {}
    for name in ("aten", "fused"):
        it = make_iteration(copy.deepcopy(base))
        compiled.fused_small_matmuls = real if name == "fused" else contextlib.nullcontext
        start = time.perf_counter()
        it()
        sides[name] = {"it": it, "first_s": time.perf_counter() - start, "ms": []}
        for _ in range(3):
            it()
    compiled.fused_small_matmuls = real
    for _ in range(n):
        for side in sides.values():
            start = time.process_time()
            side["loss"] = float(side["it"]())
            side["ms"].append((time.process_time() - start) * 1e3)
    a, b = (statistics.median(sides[k]["ms"]) for k in ("aten", "fused"))
    return {
        "aten_cpu_ms": round(a, 3),
        "fused_cpu_ms": round(b, 3),
        "fused/aten": round(b / a, 3),
        "loss_gap": abs(sides["aten"]["loss"] - sides["fused"]["loss"]),
        "first_s": {k: round(v["first_s"], 1) for k, v in sides.items()},
    }


def _iteration(y0, data, **solve_kwargs) -> Callable[[nn.Module], Callable[[], torch.Tensor]]:
    def make(f: nn.Module) -> Callable[[], torch.Tensor]:
        opt = torch.optim.Adam(f.parameters(), lr=0.01)

        def it() -> torch.Tensor:
            opt.zero_grad()
            ys = odeflow.solve(f, y0, T, compile=True, **solve_kwargs).ys
            loss = ((ys - data) ** 2).sum()
            loss.backward()
            opt.step()
            return loss.detach()

        return it

    return make


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--spiral", nargs="*", default=[], choices=["fixed", "adjoint"])
    p.add_argument("--sizes", nargs="*", default=[], help="B,D,W triples")
    p.add_argument("--iterations", type=int, default=100)
    args = p.parse_args()
    torch.set_num_threads(1)
    compiled.cache.supported = lambda: False  # both sides compiled in this process, never loaded from disk
    fixed = dict(method="tsit5", step=odeflow.FixedStep(1.5 / 29))
    for work in args.spiral:
        a = torch.tensor([[-0.1, 2.0], [-2.0, -0.1]], dtype=F64)
        y0 = torch.tensor([2.0, 0.0], dtype=F64)
        with torch.no_grad():
            data = odeflow.solve(lambda t, u: (u**3) @ a, y0, T, step=odeflow.Adaptive(rtol=1e-10, atol=1e-12)).ys
        kwargs = (
            fixed
            if work == "fixed"
            else dict(
                method="dopri5", step=odeflow.Adaptive(rtol=1e-7, atol=1e-9), gradient=odeflow.OptimizeDiscretize()
            )
        )
        row = _a_b((2, 50), _iteration(y0, data, **kwargs), args.iterations)
        print(json.dumps({"work": f"spiral {work}", **row}), flush=True)
    for triple in args.sizes:
        b, d, w = (int(v) for v in triple.split(","))
        g = torch.Generator().manual_seed(1)
        y0 = 0.5 * torch.randn(b, d, dtype=F64, generator=g)
        data = 0.1 * torch.randn(len(T), b, d, dtype=F64, generator=g)
        row = _a_b((d, w), _iteration(y0, data, **fixed), args.iterations)
        print(json.dumps({"work": f"B={b} D={d} W={w}", "products": b * d * w, **row}), flush=True)


if __name__ == "__main__":
    main()
