"""Forward solve time: odeflow vs torchdiffeq (and torchode for adaptive dopri5), side by side.

Small MLP vector field (2 -> 64 -> 2, tanh) at batch 1 and batch 1024; fixed rk4 (h = 0.01 on
[0, 1]) and adaptive dopri5 (rtol 1e-5, atol 1e-7 on [0, 5]). Prints a markdown table of
median times and ratios (peer / odeflow, > 1 means odeflow is faster).
"""

from __future__ import annotations

import torch
from _timing import machine, time_side_by_side
from torch import nn

import odeflow


def main() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 2))

    def f(t, y):
        return net(y)

    rows = []
    import torchdiffeq

    try:
        import torchode
    except ImportError:  # torchode is optional
        torchode = None
    for batch in (1, 1024):
        y0 = torch.randn(batch, 2)
        for label, method, t, kwargs in [
            ("rk4 h=0.01", "rk4", torch.tensor([0.0, 1.0]), dict(options=dict(step_size=0.01))),
            ("dopri5 1e-5", "dopri5", torch.tensor([0.0, 5.0]), dict(rtol=1e-5, atol=1e-7)),
        ]:
            fns = {
                "odeflow": lambda: odeflow.odeint(f, y0, t, method=method, **kwargs),
                "torchdiffeq": lambda: torchdiffeq.odeint(f, y0, t, method=method, **kwargs),
            }
            if torchode is not None and method == "dopri5":
                term = torchode.ODETerm(f)
                solver = torchode.AutoDiffAdjoint(
                    torchode.Dopri5(term=term), torchode.IntegralController(atol=1e-7, rtol=1e-5, term=term)
                )
                t_eval = t.repeat(batch, 1)
                fns["torchode"] = lambda: solver.solve(torchode.InitialValueProblem(y0=y0, t_eval=t_eval))
            with torch.no_grad():
                times = time_side_by_side(fns)
            rows.append((batch, label, times))
    print(f"Forward solve, no grad. Machine: {machine()}\n")
    print("| batch | solver | odeflow ms | torchdiffeq ms | torchdiffeq / odeflow | torchode ms | torchode / odeflow |")
    print("|---|---|---|---|---|---|---|")
    for batch, label, t in rows:
        tode = f"{1e3 * t['torchode']:.2f} | {t['torchode'] / t['odeflow']:.2f}x" if "torchode" in t else "– | –"
        print(
            f"| {batch} | {label} | {1e3 * t['odeflow']:.2f} | {1e3 * t['torchdiffeq']:.2f} | "
            f"{t['torchdiffeq'] / t['odeflow']:.2f}x | {tode} |"
        )


if __name__ == "__main__":
    main()
