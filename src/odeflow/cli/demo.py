"""`odeflow demo`: solve the seed 000 spiral with several methods (a solver sanity check), then
train a CNF on 8gaussians with discretize-optimize for a few minutes and write its run folder
(metrics, checkpoints, density, samples, forward/inverse panels). The recipe is the combined
one of docs/cnf.md: rk4 with 4 steps on [0, T], RNODE, learnable T, 2 steps for the first 300
iterations."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from .. import Adaptive, FixedStep, solve
from ..problems import SpiralField


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="solve a known ODE with several methods, then train a CNF on 8gaussians")
    p.add_argument("--out", type=Path, default=Path("runs/demo"))
    p.add_argument("--iterations", type=int, default=1500, help="CNF training iterations")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    t = torch.linspace(0, 6.0, 200, dtype=torch.float64)
    u0 = torch.tensor([2.0, 0.0], dtype=torch.float64)
    field = SpiralField()
    ref = solve(field, u0, t, method="dopri8", step=Adaptive(1e-12, 1e-13)).ys
    rows = []
    runs = {"rk4 h=0.05": ("rk4", FixedStep(0.05)), "bosh3 1e-6": ("bosh3", Adaptive(1e-6, 1e-8)),
            "dopri5 1e-6": ("dopri5", Adaptive(1e-6, 1e-8)), "tsit5 1e-6": ("tsit5", Adaptive(1e-6, 1e-8))}
    curves = {}
    for label, (method, step) in runs.items():
        start = time.perf_counter()
        sol = solve(field, u0, t, method=method, step=step)
        ms = 1e3 * (time.perf_counter() - start)
        err = float((sol.ys - ref).abs().max())
        rows.append(dict(run=label, max_error=err, ms=ms, **sol.stats.as_dict()))
        curves[label] = sol.ys
        print(f"{label:12s} max error {err:.2e}  nfe {sol.stats.nfe:5d}  steps {sol.stats.steps:4d} "
              f"rejected {sol.stats.rejected:3d}  {ms:7.1f} ms")
    (out / "stats.json").write_text(json.dumps(rows, indent=1))
    from ..plotting import plot_trajectories
    plot_trajectories(t, ref, curves, out / "spiral.png")
    print(f"wrote {out / 'stats.json'} and {out / 'spiral.png'}")
    from ..tasks.cnf2d import CNFConfig, train_cnf
    coarse = min(300, max(1, args.iterations // 2))
    cfg = CNFConfig(data="8gaussians", mode="disc-opt", method="rk4", n_steps=4, divergence="exact", batch=256,
                    kinetic=0.01, jacobian=0.01, zero_init=True, learn_T=True, iterations=args.iterations, lr=1e-3,
                    val_every=max(1, min(250, args.iterations)),
                    schedule=[dict(until=coarse, method="rk4", steps=2, lr=1e-3),
                              dict(until=coarse + 1, method="rk4", steps=4, lr=5e-4)])
    s = train_cnf(cfg, out / "cnf", progress=True)
    t, r = s["trained_solver"], s["rediscretized_dopri5"]
    print(f"CNF on 8gaussians (disc-opt rk4, RNODE, learnable T = {s['T']:.3f}): {s['ms_per_iter']:.1f} ms/iter; test NLL {t['nll']:.3f} nats "
          f"(inverse error {t['inverse_error']:.1e}); re-discretized with dopri5 1e-5: NLL {r['nll']:.3f} "
          f"(inverse error {r['inverse_error']:.1e}); run folder {out / 'cnf'}")
    return 0
