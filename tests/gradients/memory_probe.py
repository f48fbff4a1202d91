"""Run one forward+backward solve and print the growth of peak resident memory in MB.

Used by the memory tests in a fresh subprocess: usage `python memory_probe.py MODE STEPS`.
"""

import resource
import sys

import torch
from torch import nn

import odeflow


class Field(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 128), nn.Tanh(), nn.Linear(128, 2))

    def forward(self, t, y):
        return self.net(y)


def main(mode: str, steps: int) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    func = Field()
    y0 = torch.randn(1024, 2)
    t = torch.tensor([0.0, 1.0])
    gradient = {
        "plain": odeflow.DiscretizeOptimize(),
        "checkpointed": odeflow.DiscretizeOptimize(segment_steps=5),
        "adjoint": odeflow.OptimizeDiscretize(),
    }[mode]
    # Warm up allocator and kernels, then measure growth of the peak.
    odeflow.solve(func, y0, t, method="rk4", step=odeflow.FixedStep(0.5), gradient=gradient).ys.sum().backward()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sol = odeflow.solve(func, y0, t, method="rk4", step=odeflow.FixedStep(1.0 / steps), gradient=gradient)
    sol.ys[-1].pow(2).sum().backward()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((after - before) / 1024.0)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
