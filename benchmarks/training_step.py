"""Training step (forward + backward) time: odeflow vs torchdiffeq at equal settings, and the
backward NFE of the adjoint with and without the seminorm.

MLP field 2 -> 64 -> 2 (tanh), batch 256, loss = mean squared state at 10 output times on [0, 1].
"""

from __future__ import annotations

import torch
from _timing import machine, time_side_by_side
from torch import nn

import odeflow


class Field(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 2))

    def forward(self, t, y):
        return self.net(y)


def main() -> None:
    import torchdiffeq

    torch.manual_seed(0)
    func = Field()
    y0 = torch.randn(256, 2)
    t = torch.linspace(0, 1, 10)

    def step(lib_fn, **kw):
        def run():
            func.zero_grad()
            lib_fn(func, y0, t, **kw).pow(2).mean().backward()

        return run

    cases = [
        ("backprop rk4 h=0.01", dict(method="rk4", options=dict(step_size=0.01)), "odeint"),
        ("backprop dopri5 1e-6", dict(method="dopri5", rtol=1e-6, atol=1e-8), "odeint"),
        ("adjoint dopri5 1e-6", dict(method="dopri5", rtol=1e-6, atol=1e-8), "odeint_adjoint"),
        (
            "adjoint dopri5 1e-6 seminorm",
            dict(method="dopri5", rtol=1e-6, atol=1e-8, adjoint_options=dict(norm="seminorm")),
            "odeint_adjoint",
        ),
    ]
    print(f"Training step (forward + backward). Machine: {machine()}\n")
    print("| case | odeflow ms | torchdiffeq ms | torchdiffeq / odeflow |")
    print("|---|---|---|---|")
    for label, kw, fn_name in cases:
        times = time_side_by_side(
            {
                "odeflow": step(getattr(odeflow, fn_name), **kw),
                "torchdiffeq": step(getattr(torchdiffeq, fn_name), **kw),
            },
            repeats=5,
        )
        print(
            f"| {label} | {1e3 * times['odeflow']:.1f} | {1e3 * times['torchdiffeq']:.1f} | "
            f"{times['torchdiffeq'] / times['odeflow']:.2f}x |"
        )
    print("\nBackward NFE of odeflow's adjoint (dopri5 1e-6, same problem):\n")
    print("| norm | forward NFE | backward NFE |")
    print("|---|---|---|")
    for seminorm in (False, True):
        sol = odeflow.solve(
            func, y0, t, step=odeflow.Adaptive(1e-6, 1e-8), gradient=odeflow.OptimizeDiscretize(seminorm=seminorm)
        )
        sol.ys.pow(2).mean().backward()
        print(f"| {'seminorm' if seminorm else 'full'} | {sol.stats.nfe} | {sol.stats.nfe_backward} |")


if __name__ == "__main__":
    main()
