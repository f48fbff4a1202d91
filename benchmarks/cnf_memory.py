"""Peak memory vs number of steps for CNF training on the 64-D digits set (issue 18, item 4).

One training step (loss + backward) of a CNF (ODENet 64 -> 256 -> 256 -> 64, concatsquash,
Hutchinson divergence, rk4 with n fixed steps on [0, 0.5], batch 256, float32) with
- Disc-Opt (autograd through every step: memory O(n)),
- checkpointed Disc-Opt (round(sqrt(n)) segments, recomputed in the backward: O(sqrt n)),
- adjoint (Opt-Disc: memory flat in n).
Each (mode, n) runs in a fresh subprocess; the figure is the growth of the peak resident set
(ru_maxrss) over a warm-up step with 1 step, in MB. Prints a markdown table. Asserts nothing.

    PYTHONPATH=src python benchmarks/cnf_memory.py [--steps 4 16 64]
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import subprocess
import sys
import time

MODES = ("disc-opt", "checkpointed", "adjoint")


def one(mode: str, steps: int, batch: int) -> None:
    import torch

    from odeflow import FixedStep
    from odeflow.data.tabular import load_tabular
    from odeflow.flows import CNF
    from odeflow.nn import ODENet

    torch.set_num_threads(1)
    torch.manual_seed(0)
    data = load_tabular("digits")
    x = torch.as_tensor(data.train[:batch], dtype=torch.float32)
    flow = CNF(
        ODENet(data.dim, (256, 256)),
        data.dim,
        T=0.5,
        divergence="hutchinson",
        method="rk4",
        step=FixedStep(0.5),
        adjoint=mode == "adjoint",
        checkpoints=max(1, round(math.sqrt(steps))) if mode == "checkpointed" else None,
    )
    flow.loss(x)[0].backward()  # warm-up: allocator, kernels
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    flow.set_solver("rk4", FixedStep(0.5 / steps))
    start = time.perf_counter()
    flow.loss(x)[0].backward()
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{(after - before) / 1024.0:.1f} {seconds:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, nargs="+", default=[4, 16, 64])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        one(args.one[0], int(args.one[1]), args.batch)
        return
    print(f"load average {os.getloadavg()[0]:.2f}; batch {args.batch}; MB = growth of peak RSS (s = step time)\n")
    print("| steps | " + " | ".join(MODES) + " |")
    print("|---|" + "---|" * len(MODES))
    for n in args.steps:
        cells = []
        for mode in MODES:
            out = subprocess.run(
                [sys.executable, __file__, "--one", mode, str(n), "--batch", str(args.batch)],
                capture_output=True,
                text=True,
                check=True,
                env=dict(os.environ, OMP_NUM_THREADS="1"),
            )
            mb, s = out.stdout.split()
            cells.append(f"{float(mb):.0f} MB ({float(s):.1f} s)")
        print(f"| {n} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
