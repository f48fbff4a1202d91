"""Seed 000 time-series problem: ms per gradient evaluation, odeflow vs torchdiffeq, side by side.

Disc-Opt: rk4 on the data grid (h = 1.5/29), backprop through the steps.
Opt-Disc: dopri5 with the continuous adjoint, rtol 1e-7, atol 1e-9 (the reference settings).
Same model, same parameters (seed 0, float64), loss = SSE over the 30 points, forward + backward.
`--compile` adds odeflow Disc-Opt under torch.compile and reports its compile time.
"""
from __future__ import annotations

import sys
import time

import torch

import odeflow
from _timing import machine, time_side_by_side
from odeflow.solvers.loop import FixedGrid, integrate_fixed
from odeflow.solvers.methods import RK4
from odeflow.solvers.solution import SolverStats
from odeflow.training.timeseries import TimeSeriesConfig, build_model, load_data


def main() -> None:
    import torchdiffeq
    torch.set_num_threads(1)
    cfg = TimeSeriesConfig()
    t, u = load_data(cfg)
    model = build_model(cfg, 2)
    field, u0 = model.field, u[0]

    def grad_step(forward):
        def run():
            field.zero_grad(set_to_none=True)
            (forward() - u).pow(2).sum().backward()
        return run

    disc = {
        "odeflow": grad_step(lambda: odeflow.solve(field, u0, t, method="rk4", step=odeflow.FixedStep()).ys),
        "torchdiffeq": grad_step(lambda: torchdiffeq.odeint(field, u0, t, method="rk4")),
    }
    adj = dict(rtol=1e-7, atol=1e-9, method="dopri5")
    opt = {
        "odeflow": grad_step(lambda: odeflow.odeint_adjoint(field, u0, t, **adj)),
        "torchdiffeq": grad_step(lambda: torchdiffeq.odeint_adjoint(field, u0, t, **adj)),
    }
    print(f"Seed 000 time series, gradient of the SSE at the initial parameters. Machine: {machine()}\n")
    print("| mode | odeflow ms | torchdiffeq ms | torchdiffeq / odeflow |")
    print("|---|---|---|---|")
    for label, fns, reps in (("Disc-Opt rk4 h=1.5/29", disc, 7), ("Opt-Disc dopri5 1e-7/1e-9", opt, 3)):
        times = time_side_by_side(fns, repeats=reps, min_time=0.5)
        print(f"| {label} | {1e3 * times['odeflow']:.1f} | {1e3 * times['torchdiffeq']:.1f} | "
              f"{times['torchdiffeq'] / times['odeflow']:.1f}x |")
    if "--compile" in sys.argv:
        grid = FixedGrid(RK4, t.tolist(), [1] * (len(t) - 1), u.dtype, u.device)

        def loss_fn(y0, data):
            outs, _, _ = integrate_fixed(RK4, field, y0, grid, SolverStats())
            return (torch.stack([y0] + outs) - data).pow(2).sum()

        compiled = torch.compile(loss_fn)
        start = time.perf_counter()
        compiled(u0, u).backward()
        compile_s = time.perf_counter() - start
        times = time_side_by_side({"eager": lambda: loss_fn(u0, u).backward(),
                                   "compiled": lambda: compiled(u0, u).backward()}, repeats=7)
        print(f"\ntorch.compile of the Disc-Opt solve: first call (compile) {compile_s:.0f} s; then "
              f"{1e3 * times['compiled']:.1f} ms vs eager {1e3 * times['eager']:.1f} ms "
              f"({times['eager'] / times['compiled']:.1f}x); pays off after "
              f"{compile_s / max(times['eager'] - times['compiled'], 1e-9):.0f} iterations.")


if __name__ == "__main__":
    main()
