"""Eager fixed-grid cost: odeflow.solve vs a hand-written RK4 loop (issue 18, item 3).

The same MLP field (2 -> 64 -> 64 -> 2, tanh), classic RK4 with h = 0.01 on [0, 1] (100 steps),
outputs at t = 0 and 1; forward without grad and forward + backward (Disc-Opt). Prints a
markdown table: median ms per call and odeflow / hand-written (target <= 1.05x). Asserts nothing.

    PYTHONPATH=src python benchmarks/eager_floor.py [--threads 1]
"""

from __future__ import annotations

import argparse
import os

import torch
from _timing import machine, time_side_by_side
from torch import nn

import odeflow

H, N = 0.01, 100


def hand_rk4(f, y, h=H, n=N):
    """Classic RK4, the minimal eager loop: four evaluations and one update per step."""
    t = torch.zeros((), dtype=y.dtype)
    for _ in range(n):
        k1 = f(t, y)
        k2 = f(t + h / 2, y + (h / 2) * k1)
        k3 = f(t + h / 2, y + (h / 2) * k2)
        k4 = f(t + h, y + h * k3)
        y = y + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
        t = t + h
    return y


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 2))

    def f(t, y):
        return net(y)

    t = torch.tensor([0.0, H * N])
    step = odeflow.FixedStep(H)
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f}\n")
    print("| batch | pass | hand-written ms | odeflow ms | odeflow / hand |")
    print("|---|---|---|---|---|")
    for batch in (1, 256):
        y0 = torch.randn(batch, 2)
        ref = hand_rk4(f, y0)
        got = odeflow.solve(f, y0, t, method="rk4", step=step).ys[-1]
        assert torch.allclose(ref, got, atol=1e-5), "the two loops disagree"

        def fwd_hand():
            with torch.no_grad():
                hand_rk4(f, y0)

        def fwd_odeflow():
            with torch.no_grad():
                odeflow.solve(f, y0, t, method="rk4", step=step)

        def bwd_hand():
            hand_rk4(f, y0).square().sum().backward()

        def bwd_odeflow():
            odeflow.solve(f, y0, t, method="rk4", step=step).ys[-1].square().sum().backward()

        for name, (a, b) in {"forward": (fwd_hand, fwd_odeflow), "forward+backward": (bwd_hand, bwd_odeflow)}.items():
            r = time_side_by_side({"hand": a, "odeflow": b}, repeats=args.repeats)
            print(
                f"| {batch} | {name} | {1e3 * r['hand']:.2f} | {1e3 * r['odeflow']:.2f} | {r['odeflow'] / r['hand']:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
