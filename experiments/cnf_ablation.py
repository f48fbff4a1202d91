"""Ablation of the CNF speed-ups on toy 2-D data (issue: RNODE + TO-FLOW + multilevel).

Six recipes, same net (64-64-64 concatsquash, tanh, exact trace), same seed and batches, the
same wall-time budget of training (validation excluded) on one CPU thread:

  ffjord       Opt-Disc dopri5 rtol = atol = 1e-5 (FFJORD baseline)
  disc-opt     Disc-Opt rk4 h = 0.05, i.e. 10 steps on T = 0.5 (seed 000 Table 1)
  +rnode       Disc-Opt rk4 h = 0.125 (4 steps, RNODE's recipe), lambda_K = lambda_J = 0.01, zero last layer
  +to-flow     Disc-Opt rk4 10 steps on [0, T] whatever T, learnable T (Adam 1e-2, alpha = 0.1, clip [0.1, 0.9])
  +multilevel  Disc-Opt rk4 h = 0.1 for the first 300 iterations (lr 1e-3), then h = 0.05 (lr 5e-4)
  combined     rk4 4 steps on [0, T] + RNODE + TO-FLOW + multilevel (2 steps first, lr 1e-3 -> 5e-4)

TO-FLOW counts steps rather than fixing h: with a fixed h, a growing T buys more steps and the
iteration gets dearer (measured: T rose to 0.9 and each iteration cost 1.8x more), and with RNODE
on, T collapsed to the lower clip 0.1 (the end-time integrands E', n' >= 0 only ever push T down).

Validation: exact-trace test NLL with dopri5 1e-5 every `val_every` iterations. Reported: wall
time to reach the FFJORD run's final test NLL, final NLL, NFE-F/NFE-B per iteration, inverse
error after re-discretization with dopri5 1e-5. Table and convergence figure go to docs/.

Usage: python experiments/cnf_ablation.py [--budget S] [--data NAME ...] [--train-only]
"""

import argparse
import json
import math
from pathlib import Path

import torch

from odeflow.tasks.cnf2d import CNFConfig, train_cnf
from odeflow.training.run_folder import read_metrics

COARSE_FIRST = 300
RNODE = dict(kinetic=0.01, jacobian=0.01, zero_init=True)


def two_levels(coarse: dict, fine: dict) -> list:
    return [
        dict(until=COARSE_FIRST, method="rk4", lr=1e-3, **coarse),
        dict(until=COARSE_FIRST + 1, method="rk4", lr=5e-4, **fine),
    ]


RECIPES = {
    "ffjord": dict(mode="opt-disc", method="dopri5", step_size=None),
    "disc-opt": dict(method="rk4", step_size=0.05),
    "+rnode": dict(method="rk4", step_size=0.125, **RNODE),
    "+to-flow": dict(method="rk4", n_steps=10, learn_T=True),
    "+multilevel": dict(method="rk4", step_size=0.05, schedule=two_levels(dict(step_size=0.1), dict(step_size=0.05))),
    "combined": dict(method="rk4", n_steps=4, learn_T=True, schedule=two_levels(dict(steps=2), dict(steps=4)), **RNODE),
}


def train_all(args) -> None:
    for data in args.data:
        for name, over in RECIPES.items():
            out = args.out / data / name
            if (out / "summary.json").exists():
                continue
            cfg = CNFConfig(
                data=data,
                T=0.5,
                divergence="exact",
                batch=args.batch,
                lr=1e-3,
                iterations=1_000_000,
                time_budget=args.budget,
                val_every=args.val_every,
                val_size=1024,
                val_method="dopri5",
                seed=0,
                **over,
            )
            s = train_cnf(cfg, out, progress=True)
            print(
                f"{data} {name}: {s['iterations']} its, {s['ms_per_iter']:.1f} ms/iter, best {s['best_val_nll']:.3f}, "
                f"T {s['T']:.3f}",
                flush=True,
            )


def curve(folder: Path):
    rows = [r for r in read_metrics(folder / "metrics.csv")]
    val = [(r["wall_time"], r["val_nll"]) for r in rows if not math.isnan(r["val_nll"])]
    return rows, val


def report(args) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = []
    fig, axes = plt.subplots(1, len(args.data), figsize=(6 * len(args.data), 4.5), squeeze=False)
    for ax, data in zip(axes[0], args.data):
        _, base = curve(args.out / data / "ffjord")
        target = base[-1][1]
        lines += [
            f"\n### {data} (target: FFJORD's final test NLL {target:.3f})\n",
            "| recipe | iterations | ms/iter | NFE-F / NFE-B per iter | final test NLL | time to target (s) | "
            "speed-up | time to target + 0.05 (s) | speed-up | final T | inverse error (dopri5 1e-5) |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        base_hits = [next(t for t, v in base if v <= goal) for goal in (target, target + 0.05)]
        for name in RECIPES:
            folder = args.out / data / name
            rows, val = curve(folder)
            s = json.loads((folder / "summary.json").read_text())
            nf = sum(r["nfe_forward"] for r in rows) / len(rows)
            nb = sum(r["nfe_backward"] for r in rows) / len(rows)
            cells = [name, str(s["iterations"]), f"{s['ms_per_iter']:.1f}", f"{nf:.1f} / {nb:.1f}", f"{val[-1][1]:.3f}"]
            for goal, base_hit in zip((target, target + 0.05), base_hits):
                hit = next((t for t, v in val if v <= goal), None)
                cells += [f"{hit:.1f}", f"{base_hit / hit:.1f}x"] if hit else ["not reached", "–"]
            cells += [f"{s['T']:.3f}", f"{s['rediscretized_dopri5']['inverse_error']:.1e}"]
            lines.append("| " + " | ".join(cells) + " |")
            ax.plot([t for t, _ in val], [v for _, v in val], label=name)
        ax.axhline(target, color="k", lw=0.5, ls="--")
        ax.set_xlabel("training wall time (s)")
        ax.set_ylabel("test NLL (exact trace, dopri5 1e-5)")
        ax.set_title(data)
        ax.legend()
    fig.tight_layout()
    fig.savefig(args.docs / "convergence.png", dpi=100)
    plt.close(fig)
    return "\n".join(lines)


if __name__ == "__main__":
    torch.set_num_threads(1)
    p = argparse.ArgumentParser()
    p.add_argument("--budget", type=float, default=150.0, help="seconds of training per recipe")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--val-every", type=int, default=50)
    p.add_argument("--data", nargs="+", default=["8gaussians", "checkerboard"])
    p.add_argument("--out", type=Path, default=Path("runs/cnf_ablation"))
    p.add_argument("--docs", type=Path, default=Path("docs/cnf_ablation"))
    p.add_argument("--train-only", action="store_true")
    args = p.parse_args()
    train_all(args)
    if not args.train_only:
        args.docs.mkdir(parents=True, exist_ok=True)
        text = report(args)
        (args.docs / "table.md").write_text(text + "\n")
        print(text)
