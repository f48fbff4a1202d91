"""Implicit Runge–Kutta solves with compile=True against eager: CPU ms per solve.

Stiff Van der Pol rows (mu spread evenly over [10, 300], x(0) = 2, t in [0, 2], 11 outputs),
float64, radauIIA5 (row-blocked Jacobian, ``jacobian='batched'``) at rtol 1e-6, atol 1e-8;
``forward``: the solve alone (grad mode on, nothing requiring gradients), ``backprop``: the solve
and the gradient of sum(ys^2) in mu by backpropagation through the steps. compile=True compiles
each step's Newton iteration (`odeflow.solvers.compiled_newton`). Eager and compiled solves
alternate in one process after a warm-up call each; CPU time of this process (it holds on a
loaded machine); steps and NFE are the same on both sides. Asserts nothing.

Usage: python benchmarks/compiled_implicit.py [--batches 8 128 1024] [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

import odeflow
from odeflow import Adaptive
from odeflow.solvers.implicit import IMPLICIT_METHODS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import cpu_side_by_side  # noqa: E402

D = torch.float64


class VanDerPol(torch.nn.Module):
    def __init__(self, batch: int) -> None:
        super().__init__()
        self.mu = torch.nn.Parameter(torch.linspace(10.0, 300.0, batch, dtype=D))

    def forward(self, t, y):
        x, v = y[..., 0], y[..., 1]
        return torch.stack([v, self.mu * (1 - x * x) * v - x], -1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, nargs="+", default=[8, 128, 1024])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    method = IMPLICIT_METHODS["radauIIA5"].with_options(jacobian="batched")
    t = torch.linspace(0.0, 2.0, 11, dtype=D)
    print("| batch | mode | eager CPU ms | compiled CPU ms | compiled / eager | steps (rejected) | NFE |")
    print("|---|---|---|---|---|---|---|")
    for batch in args.batches:
        field = VanDerPol(batch)
        y0 = torch.tensor([2.0, 0.0], dtype=D).repeat(batch, 1)
        for mode in ("forward", "backprop"):
            field.mu.requires_grad_(mode == "backprop")

            def run(compile: bool):
                sol = odeflow.solve(field, y0, t, method=method, step=Adaptive(rtol=1e-6, atol=1e-8), compile=compile)
                if mode == "backprop":
                    torch.autograd.grad(sol.ys.pow(2).sum(), field.mu)
                return sol

            cpu = cpu_side_by_side({"eager": lambda: run(False), "compiled": lambda: run(True)}, args.repeats)
            sol = run(True)
            eager, comp = 1e3 * cpu["eager"], 1e3 * cpu["compiled"]
            print(
                f"| {batch} | {mode} | {eager:.1f} | {comp:.1f} | {comp / eager:.2f} | "
                f"{sol.stats.accepted} ({sol.stats.rejected}) | {sol.stats.nfe} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
