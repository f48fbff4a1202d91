"""Seed 000 time-series problem: ms per gradient evaluation, odeflow vs torchdiffeq, side by side.

Disc-Opt: rk4 on the data grid (h = 1.5/29), backprop through the steps.
Opt-Disc: dopri5 with the continuous adjoint, rtol 1e-7, atol 1e-9 (the reference settings).
Same model, same parameters (seed 0, float64), loss = SSE over the 30 points, forward + backward.
odeflow runs eager and compiled (`solve(..., compile=True)`); the compile time of the first
call is reported separately. The odeflow cache directory (compiled solvers and Inductor's cache)
starts empty (a fresh temporary folder) unless --warm-cache is given ($ODEFLOW_CACHE_DIR or
~/.cache/odeflow), so the compile time is the cold one.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

if "--warm-cache" not in sys.argv:
    os.environ["ODEFLOW_CACHE_DIR"] = tempfile.mkdtemp(prefix="odeflow-bench-cache-")

import torch  # noqa: E402
from _timing import machine, time_side_by_side  # noqa: E402

import odeflow  # noqa: E402
from odeflow.tasks.timeseries import TimeSeriesConfig, build_model, load_data  # noqa: E402


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

    fixed = dict(method="rk4", step=odeflow.FixedStep())
    disc = {
        "odeflow": grad_step(lambda: odeflow.solve(field, u0, t, **fixed).ys),
        "odeflow compiled": grad_step(lambda: odeflow.solve(field, u0, t, **fixed, compile=True).ys),
        "torchdiffeq": grad_step(lambda: torchdiffeq.odeint(field, u0, t, method="rk4")),
    }
    adaptive = dict(method="dopri5", step=odeflow.Adaptive(rtol=1e-7, atol=1e-9), gradient=odeflow.OptimizeDiscretize())
    adj = dict(rtol=1e-7, atol=1e-9, method="dopri5")
    opt = {
        "odeflow": grad_step(lambda: odeflow.solve(field, u0, t, **adaptive).ys),
        "odeflow compiled": grad_step(lambda: odeflow.solve(field, u0, t, **adaptive, compile=True).ys),
        "torchdiffeq": grad_step(lambda: torchdiffeq.odeint_adjoint(field, u0, t, **adj)),
    }

    def gradient(run):
        run()
        return torch.cat([p.grad.reshape(-1) for p in field.parameters()])

    # Reference gradient: backprop through torchdiffeq's dopri5 at rtol 1e-12, atol 1e-14.
    reference = gradient(grad_step(lambda: torchdiffeq.odeint(field, u0, t, rtol=1e-12, atol=1e-14)))
    cache = "warm" if "--warm-cache" in sys.argv else "cold"
    print(f"Seed 000 time series, gradient of the SSE at the initial parameters. Machine: {machine()}\n")
    print(f"| mode | torchdiffeq ms | odeflow ms | ratio | odeflow compiled ms | ratio | compile s ({cache} cache) |")
    print("|---|---|---|---|---|---|---|")
    errors = {}
    for label, fns, reps in (("Disc-Opt rk4 h=1.5/29", disc, 7), ("Opt-Disc dopri5 1e-7/1e-9", opt, 5)):
        start = time.perf_counter()
        fns["odeflow compiled"]()  # first call: compiles
        compile_s = time.perf_counter() - start
        times = time_side_by_side(fns, repeats=reps, min_time=0.5)
        peer = times["torchdiffeq"]
        print(
            f"| {label} | {1e3 * peer:.1f} | {1e3 * times['odeflow']:.1f} | {peer / times['odeflow']:.1f}x | "
            f"{1e3 * times['odeflow compiled']:.2f} | {peer / times['odeflow compiled']:.1f}x | {compile_s:.0f} |"
        )
        errors[label] = {name: float((gradient(fn) - reference).norm() / reference.norm()) for name, fn in fns.items()}
    print("\nRelative error of the parameter gradient against torchdiffeq dopri5 backprop at rtol 1e-12:\n")
    print("| mode | torchdiffeq | odeflow | odeflow compiled |")
    print("|---|---|---|---|")
    for label, e in errors.items():
        print(f"| {label} | {e['torchdiffeq']:.1e} | {e['odeflow']:.1e} | {e['odeflow compiled']:.1e} |")


if __name__ == "__main__":
    main()
