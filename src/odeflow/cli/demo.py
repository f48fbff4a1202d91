"""`odeflow demo`: solve the seed 000 spiral with several methods (a solver sanity check), then
train a CNF on 8gaussians with odeflow's fast recipe (`configs/cnf_fast.toml`: Disc-Opt rk4,
RNODE, three multilevel stages; docs/cnf.md) and write its run folder: metrics, checkpoints,
density, samples and forward/inverse panels. Under a minute on two CPU cores."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Dict, Tuple

# odeflow's fast CNF recipe, the same settings as configs/cnf_fast.toml (a test keeps the two equal).
FAST_RECIPE: Dict[str, Any] = dict(
    data="8gaussians",
    hidden=[64, 64, 64],
    layer="concatsquash",
    activation="tanh",
    T=0.5,
    mode="disc-opt",
    method="rk4",
    n_steps=4,
    divergence="hutchinson",
    batch=256,
    lr=1e-2,
    kinetic=0.01,
    jacobian=0.01,
    zero_init=True,
    learn_T=False,
    iterations=250,
    val_every=50,
    val_method="dopri5",
    schedule=[
        dict(until=50, method="rk4", steps=2, lr=1e-2),
        dict(until=150, method="rk4", steps=2, lr=1e-3),
        dict(until=151, method="rk4", steps=4, lr=5e-4),
    ],
)

# FFJORD's toy recipe (Grathwohl et al. 2019), here on odeflow's own adjoint: dopri5 at 1e-5, batch
# 512, lr 1e-3, weight decay 1e-5, Hutchinson trace, no regularizer.
FFJORD_RECIPE: Dict[str, Any] = dict(
    data="8gaussians",
    hidden=[64, 64, 64],
    layer="concatsquash",
    activation="tanh",
    T=0.5,
    mode="opt-disc",
    method="dopri5",
    step_size=None,
    rtol=1e-5,
    atol=1e-5,
    divergence="hutchinson",
    batch=512,
    lr=1e-3,
    weight_decay=1e-5,
    iterations=100_000,
    val_every=100_000,
    val_method="dopri5",
    zero_init=False,
    kinetic=0.0,
    jacobian=0.0,
    learn_T=False,
    schedule=None,  # not odeflow's defaults
)

# Measured in docs/cnf.md ("Time to test NLL 3.15 on 8gaussians"), same machine, side by side.
TIME_TO_NLL_POINTER = (
    "docs/cnf.md, 'Time to test NLL 3.15 on 8gaussians': this recipe reached NLL 3.15 "
    "34-61x sooner than FFJORD's recipe on torchdiffeq (3 seeds); rerun it with "
    "`python benchmarks/cnf_time_to_nll.py --recipes fast --seed 0`"
)


def register(sub: argparse._SubParsersAction) -> None:
    from .commands import help_of

    p = sub.add_parser("demo", help=help_of("demo"))
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="a new or empty folder")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier demo's folder")
    p.add_argument("--iterations", type=int, default=FAST_RECIPE["iterations"], help="CNF training iterations")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: at this size a second thread gains nothing on a quiet "
        "2-core machine and costs 2.2x when another job shares the cores)",
    )
    p.set_defaults(run=run)


def _solver_comparison(out: Path) -> None:
    """The spiral u' = A u^3 (seed 000 §4.1) with four solvers against a dopri8 reference."""
    import torch

    from .. import Adaptive, FixedStep, solve
    from ..plotting import plot_trajectories
    from ..problems import SpiralField

    t = torch.linspace(0, 6.0, 200, dtype=torch.float64)
    u0 = torch.tensor([2.0, 0.0], dtype=torch.float64)
    field = SpiralField()
    ref = solve(field, u0, t, method="dopri8", step=Adaptive(1e-12, 1e-13)).ys
    runs: Dict[str, Tuple[str, Any]] = {
        "rk4 h=0.05": ("rk4", FixedStep(0.05)),
        "bosh3 1e-6": ("bosh3", Adaptive(1e-6, 1e-8)),
        "dopri5 1e-6": ("dopri5", Adaptive(1e-6, 1e-8)),
        "tsit5 1e-6": ("tsit5", Adaptive(1e-6, 1e-8)),
    }
    rows, curves = [], {}
    for label, (method, step) in runs.items():
        start = time.perf_counter()
        sol = solve(field, u0, t, method=method, step=step)
        ms = 1e3 * (time.perf_counter() - start)
        err = float((sol.ys - ref).abs().max())
        rows.append(dict(run=label, max_error=err, ms=ms, **sol.stats.as_dict()))
        curves[label] = sol.ys
        print(
            f"{label:12s} max error {err:.2e}  nfe {sol.stats.nfe:5d}  steps {sol.stats.steps:4d} "
            f"rejected {sol.stats.rejected:3d}  {ms:7.1f} ms"
        )
    (out / "stats.json").write_text(json.dumps(rows, indent=1))
    plot_trajectories(t, ref, curves, out / "spiral.png")


def _check_demo_folder(out: Path, overwrite: bool) -> None:
    """Refuse (before any work) a file, or an earlier demo's folder unless ``overwrite`` (then it goes)."""
    import shutil

    from ..training.run_folder import check_run_folder

    if overwrite and out.is_dir() and (out / "stats.json").is_file():  # an earlier demo's folder
        shutil.rmtree(out)
    check_run_folder(out, overwrite=False, resumable=False)


def run(args: argparse.Namespace) -> int:
    import torch

    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1; got {args.threads}")
    torch.set_num_threads(args.threads)
    out: Path = args.out
    _check_demo_folder(out, args.overwrite)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    _solver_comparison(out)
    from ..tasks.cnf2d import CNFConfig, train_cnf

    recipe = dict(FAST_RECIPE, iterations=args.iterations, val_every=min(FAST_RECIPE["val_every"], args.iterations))
    s = train_cnf(CNFConfig(**recipe), out / "cnf", progress=not args.quiet)
    t, r = s["trained_solver"], s["rediscretized_dopri5"]
    # The same training clock for FFJORD's recipe: what it reaches in the seconds the fast recipe took.
    budget = float(s["train_seconds"])
    f = train_cnf(CNFConfig(**FFJORD_RECIPE, time_budget=budget), out / "ffjord_same_clock", progress=not args.quiet)
    same_clock = dict(
        seconds=budget,
        fast_recipe=dict(iterations=s["iterations"], test_nll=t["nll"]),
        ffjord_recipe=dict(iterations=f["iterations"], test_nll=f["trained_solver"]["nll"]),
    )
    (out / "same_clock.json").write_text(json.dumps(same_clock, indent=1))
    seconds = time.perf_counter() - start
    print(
        f"\nCNF on 8gaussians (fast recipe: disc-opt rk4, RNODE, multilevel 2 -> 4 steps): "
        f"{s['ms_per_iter']:.1f} ms/iter; test NLL {t['nll']:.3f} nats (inverse error {t['inverse_error']:.1e}); "
        f"re-discretized with dopri5 1e-5: NLL {r['nll']:.3f} (inverse error {r['inverse_error']:.1e})"
    )
    print(f"demo done in {seconds:.0f} s.")
    print(
        f"  figures: {out / 'spiral.png'} (solvers), {out / 'cnf' / 'density.png'} (data, density, samples), "
        f"{out / 'cnf' / 'forward_inverse.png'}"
    )
    print(f"  metrics: {out / 'cnf' / 'metrics.csv'}, {out / 'cnf' / 'summary.json'}, {out / 'stats.json'}")
    print(
        f"  the same {budget:.1f} s of training: fast recipe test NLL {t['nll']:.3f} ({s['iterations']} iterations) vs "
        f"FFJORD's recipe (dopri5 adjoint) {f['trained_solver']['nll']:.3f} ({f['iterations']} iterations); "
        f"{out / 'same_clock.json'}"
    )
    print(f"  time to NLL against FFJORD on torchdiffeq: {TIME_TO_NLL_POINTER}")
    print(
        "  train longer for a better model: odeflow train cnf --config configs/cnf_fast.toml "
        "--iterations 2500 --out runs/cnf_long"
    )
    return 0
