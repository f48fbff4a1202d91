"""Eager solve + backward cost on the three loops the solver interface drives, for A/B runs of two
source trees (run it once per tree, alternating, each pinned to one core):

    PYTHONPATH=OLD/src taskset -c 0 python benchmarks/eager_paths.py
    PYTHONPATH=NEW/src taskset -c 0 python benchmarks/eager_paths.py

The seed-000 spiral field (2-50-2 tanh on u^3, fixed seed), 30 outputs on [0, 1.5], float64,
backprop (Disc-Opt): dopri5 adaptive (rtol 1e-7, atol 1e-9), rk4 on an explicit 60-point grid
(the grid loop, Hermite outputs), radauIIA5 adaptive (rtol 1e-6, atol 1e-8), and rk4 on equal
steps h = 0.025 (the fixed loop), plain and in 4 checkpointed segments. Prints the median
CPU ms of 40 calls after 3 warm-up calls and the NFE. Asserts nothing.
"""

from __future__ import annotations

import time

import torch

import odeflow


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 50), torch.nn.Tanh(), torch.nn.Linear(50, 2)).double()
    f = lambda t, y: net(y**3)  # noqa: E731
    y0 = torch.tensor([[2.0, 0.0]], dtype=torch.float64)
    t = torch.linspace(0, 1.5, 30, dtype=torch.float64)
    runs = {
        "adaptive (dopri5)": dict(method="dopri5", step=odeflow.Adaptive(rtol=1e-7, atol=1e-9)),
        "grid (rk4, 60 points)": dict(method="rk4", step=odeflow.FixedStep(grid=torch.linspace(0, 1.5, 60).tolist())),
        "implicit (radauIIA5)": dict(method="radauIIA5", step=odeflow.Adaptive(rtol=1e-6, atol=1e-8)),
        "equal steps (rk4, h 0.025)": dict(method="rk4", step=odeflow.FixedStep(0.025)),
        "checkpointed (rk4, h 0.025, 4 segments)": dict(
            method="rk4", step=odeflow.FixedStep(0.025), gradient=odeflow.DiscretizeOptimize(checkpoints=4)
        ),
    }
    for name, kw in runs.items():
        times, nfe = [], 0
        for i in range(43):
            start = time.process_time()
            sol = odeflow.solve(f, y0, t, **kw)
            sol.ys.sum().backward()
            if i >= 3:
                times.append(time.process_time() - start)
            nfe = sol.stats.nfe
        times.sort()
        print(f"{name}: {1000 * times[len(times) // 2]:.2f} ms, nfe {nfe}")


if __name__ == "__main__":
    main()
