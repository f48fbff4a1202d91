"""Per-sample stepping against torchode and a shared step: sample-steps and wall time, side by side.

Batches of heterogeneous problems, dopri5, rtol 1e-6, atol 1e-8, float64, 50 outputs, one thread:

- vdp: Van der Pol x'' = mu (1 - x^2) x' - x, mu spread evenly over [0.5, 8], x(0) = 2, t in [0, 10];
- lotka: Lotka-Volterra with a, b, d, g drawn in [0.5, 1.5] (seed 0), x(0) = y(0) = 1, t in [0, 15].

Sides (all in this one process, interleaved by `_timing.time_side_by_side`): odeflow's shared
step (`solve` without per_sample: every sample takes the hardest sample's steps), odeflow
``per_sample=True``, odeflow ``per_sample=PerSample(compact=0.5)``, torchode 1.0.1 (per-sample
steps; PID controller with pcoeff 0.4, icoeff 0.3: odeflow's PI constants alpha 0.7, beta 0.4)
and torchdiffeq's shared step. "sample-steps" is the sum over samples of the accepted steps
each sample took (a shared step counts its steps once per sample).

    python benchmarks/per_sample.py [--batches 32 256 1024 4096] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Dict, Tuple

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine, time_side_by_side  # noqa: E402

import odeflow  # noqa: E402
from odeflow.solvers.per_sample import PerSample  # noqa: E402
from odeflow.solvers.stepping import Adaptive  # noqa: E402

D = torch.float64
RTOL, ATOL = 1e-6, 1e-8


def problem(name: str, batch: int) -> Tuple[Callable, torch.Tensor, torch.Tensor]:
    """(f(t, y[, rows]) for t [B] or 0-d, y0 [B, 2], t [50]); rows: the batch rows of y (compaction)."""
    if name == "vdp":
        mu = torch.linspace(0.5, 8.0, batch, dtype=D)

        def vdp(t, y, rows=None):
            m = mu if rows is None else mu[rows]
            x, v = y[..., 0], y[..., 1]
            return torch.stack([v, m * (1 - x * x) * v - x], -1)

        y0 = torch.tensor([2.0, 0.0], dtype=D).repeat(batch, 1)
        return vdp, y0, torch.linspace(0, 10, 50, dtype=D)
    p = 0.5 + torch.rand(batch, 4, generator=torch.Generator().manual_seed(0), dtype=D)

    def lotka(t, y, rows=None):
        a, b, d, g = (p if rows is None else p[rows]).unbind(-1)
        x, z = y[..., 0], y[..., 1]
        return torch.stack([a * x - b * x * z, d * x * z - g * z], -1)

    return lotka, torch.ones(batch, 2, dtype=D), torch.linspace(0, 15, 50, dtype=D)


def sides(f: Callable, y0: torch.Tensor, t: torch.Tensor) -> Dict[str, Callable[[], Tuple[torch.Tensor, int, int]]]:
    """Each side: a call returning (ys [T, B, 2], sample-steps, batched evaluations)."""
    import torchdiffeq
    import torchode as to

    batch = y0.shape[0]
    step = Adaptive(rtol=RTOL, atol=ATOL)

    def shared():
        sol = odeflow.solve(f, y0, t, step=step)
        return sol.ys, sol.stats.accepted * batch, sol.stats.nfe

    def per_sample(options: object = True):
        sol = odeflow.solve(f, y0, t, step=step, per_sample=options)
        return sol.ys, sol.stats.accepted, sol.stats.nfe

    term = to.ODETerm(f)
    solver = to.AutoDiffAdjoint(
        to.Dopri5(term=term), to.PIDController(atol=ATOL, rtol=RTOL, pcoeff=0.4, icoeff=0.3, dcoeff=0.0, term=term)
    )
    t_eval = t.unsqueeze(0).expand(batch, -1)

    def torchode():
        sol = solver.solve(to.InitialValueProblem(y0=y0, t_eval=t_eval))
        return sol.ys.transpose(0, 1), int(sol.stats["n_accepted"].sum()), int(sol.stats["n_f_evals"].max())

    def torchdiffeq_shared():
        counter = [0]

        def counted(tt, y):
            counter[0] += 1
            return f(tt, y)

        ys = torchdiffeq.odeint(counted, y0, t, rtol=RTOL, atol=ATOL, method="dopri5")
        return ys, -1, counter[0]

    return {
        "odeflow shared step": shared,
        "odeflow per_sample": per_sample,
        "odeflow per_sample compact=0.5": lambda: per_sample(PerSample(compact=0.5)),
        "torchode": torchode,
        "torchdiffeq shared step": torchdiffeq_shared,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[32, 256, 1024, 4096])
    ap.add_argument("--problems", nargs="+", default=["vdp", "lotka"])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"# per-sample stepping, dopri5 rtol {RTOL} atol {ATOL}, float64; {machine()}")
    print("| problem | batch | side | sample-steps | batched f evals | ms | ms / torchode | max |y - per_sample| |")
    print("|---|---|---|---|---|---|---|---|")
    with torch.no_grad():
        for name in args.problems:
            for batch in args.batches:
                f, y0, t = problem(name, batch)
                fns = sides(f, y0, t)
                results = {side: fn() for side, fn in fns.items()}
                wall = time_side_by_side(fns, repeats=args.repeats, min_time=0.0)
                ref = results["odeflow per_sample"][0]
                for side, (ys, sample_steps, evals) in results.items():
                    diff = float((ys - ref).abs().max())
                    steps = "n/a" if sample_steps < 0 else f"{sample_steps:,}"
                    print(
                        f"| {name} | {batch} | {side} | {steps} | {evals} | {wall[side] * 1e3:.0f} | "
                        f"{wall[side] / wall['torchode']:.2f} | {diff:.1e} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
