"""CNF training step, eager vs `CNF(compile=True)` (issue 18, item 1), on 8gaussians.

FFJORD-style CNF (ODENet 2→64→64→64→2 concatsquash, Hutchinson, T = 0.5, rk4 h = 0.05, i.e. 10
steps), batch 512, float32, Adam 1e-3; Disc-Opt and Opt-Disc. Reports the first (compiling)
iteration and the median ms of the following ones; asserts nothing.

    PYTHONPATH=src python benchmarks/cnf_compile_step.py [--iterations 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from odeflow import FixedStep
from odeflow.data.toy2d import sample_toy
from odeflow.flows import CNF
from odeflow.nn import ODENet


def run(compile: bool, adjoint: bool, iterations: int):
    torch.manual_seed(0)
    flow = CNF(
        ODENet(2, (64, 64, 64)),
        2,
        T=0.5,
        divergence="hutchinson",
        method="rk4",
        step=FixedStep(0.05),
        adjoint=adjoint,
        compile=compile,
    )
    opt = torch.optim.Adam(flow.parameters(), lr=1e-3)
    times, losses = [], []
    for it in range(iterations):
        x = torch.as_tensor(sample_toy("8gaussians", 512, seed=it), dtype=torch.float32)
        start = time.perf_counter()
        opt.zero_grad()
        loss, _ = flow.loss(x)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
        losses.append(float(loss.detach()))
    return times[0], statistics.median(times[1:]), losses[-1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--modes", nargs="+", default=["disc-opt", "opt-disc"], choices=["disc-opt", "opt-disc"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"load average {os.getloadavg()[0]:.2f}; {args.threads} thread(s)\n")
    print("| mode | eager first s | eager ms/iter | compiled first s | compiled ms/iter | eager / compiled |")
    print("|---|---|---|---|---|---|")
    for adjoint in [m == "opt-disc" for m in args.modes]:
        e0, e, le = run(False, adjoint, args.iterations)
        c0, c, lc = run(True, adjoint, args.iterations)
        assert abs(le - lc) < 1e-3 * max(1.0, abs(le)), (le, lc)
        print(
            f"| {'Opt-Disc' if adjoint else 'Disc-Opt'} | {e0:.2f} | {1e3 * e:.1f} | {c0:.1f} | {1e3 * c:.1f} | "
            f"{e / c:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
