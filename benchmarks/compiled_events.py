"""Event solves with compile=True against eager: CPU ms per solve and gradient.

A rotation plus a small random MLP (tests/solvers/test_compiled_events.py's `Rotating`), two
states in float64, dopri5 rtol 1e-8 atol 1e-10, a terminal event, a loss on the states and the
event time; both gradient modes. Eager and compiled solves alternate in one process after a
warm-up call each (the first compiled call compiles); CPU time of this process, so it holds on a
loaded machine. Asserts nothing.

Usage: python benchmarks/compiled_events.py [--repeats 15] [--seeds 3 4 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "solvers"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import cpu_side_by_side  # noqa: E402
from test_compiled_events import D, Rotating, _solve  # noqa: E402

from odeflow import DiscretizeOptimize, OptimizeDiscretize  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--seeds", type=int, nargs="+", default=[3, 4, 5])
    args = ap.parse_args()
    torch.set_num_threads(1)
    print("| seed | gradient | eager CPU ms | compiled CPU ms | compiled / eager | steps | nfe (search + solve) |")
    print("|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        g = torch.Generator().manual_seed(seed)
        field = Rotating(seed)
        angle = torch.rand(2, generator=g, dtype=D) * 0.5
        y0 = torch.stack([torch.cos(angle), torch.sin(angle)], -1)
        threshold = float(0.3 + 0.4 * torch.rand((), generator=g, dtype=D))
        t = torch.linspace(0.0, 6.0, 7, dtype=D)
        for name, grad in (("backprop", DiscretizeOptimize()), ("adjoint", OptimizeDiscretize())):
            fns = {
                "eager": lambda g=grad: _solve(field, y0, t, threshold, g, False),
                "compiled": lambda g=grad: _solve(field, y0, t, threshold, g, True),
            }
            cpu = cpu_side_by_side(fns, args.repeats)
            sol, _ = fns["compiled"]()
            eager, comp = 1e3 * cpu["eager"], 1e3 * cpu["compiled"]
            print(
                f"| {seed} | {name} | {eager:.1f} | {comp:.1f} | {comp / eager:.2f} | {sol.stats.accepted} | "
                f"{sol.stats.nfe} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
