"""Coverage of the coefficient intervals: Gauss–Newton against its union with the parametric
bootstrap (odeflow.discover.intervals), on fresh instances, side by side on the same draws.

Per family instance (odeflow.data.discovery_families, the seeds given: not the benchmark's
100 + i), one noise draw at the benchmark's sizes (80–200 observations), the true support fitted to
the observations as the search fits every candidate (multiple shooting from the observations, no
neural fit; the noise model estimated on a first fit, then the weighted refit), then the intervals.
A row per run: how many true coefficients each interval covers, the bootstrap's draws and the
seconds it took (CPU).

  OMP_NUM_THREADS=1 PYTHONPATH=src python experiments/discover_interval_boot.py --seeds 300 310 \\
      --out docs/dynamics/discover_interval_boot.jsonl
  python experiments/discover_interval_boot.py --report docs/dynamics/discover_interval_boot.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from odeflow.data.discovery_families import random_instance
from odeflow.discover.intervals import coefficient_intervals, coverage
from odeflow.discover.library import parse_library
from odeflow.discover.model_search import variance_of
from odeflow.discover.observation_fit import fit_on_observations, segments_of


def run(system: str, seed: int, kind: str, noise: float, draws: int, substeps: int = 4) -> dict:
    inst = random_instance(system, seed)
    n_obs = int(np.random.default_rng([seed, 7]).integers(80, 201))
    lib = parse_library(inst.library).build(inst.variables)
    truth = inst.truth(lib.terms)
    sup = truth != 0
    t, x, _ = inst.observe(n_obs, noise, seed, kind)
    seg = segments_of(t, x, torch.zeros(len(t), dtype=torch.long), substeps=substeps)
    fit = fit_on_observations(lib, sup, truth, seg)
    _, level = fit.raw_residuals(seg)
    seg = seg.with_weights(variance_of(fit, seg).weights(level))
    fit = fit_on_observations(lib, sup, fit.coefficients, seg, fit.starts)
    clock = time.process_time()
    iv = coefficient_intervals(lib, fit, seg, draws=draws, seed=seed)
    seconds = time.process_time() - clock
    gn = coverage(fit.coefficients - 1.96 * fit.stderr, fit.coefficients + 1.96 * fit.stderr, truth)
    boot_lo = fit.coefficients - iv.boot_bias - 1.96 * iv.boot_sd
    boot_hi = fit.coefficients - iv.boot_bias + 1.96 * iv.boot_sd
    return dict(
        system=system,
        seed=seed,
        kind=kind,
        noise=noise,
        n=n_obs,
        n_true=gn[1],
        gn=gn[0],
        boot=coverage(boot_lo, boot_hi, truth)[0],
        union=coverage(iv.lower, iv.upper, truth)[0],
        sd_ratio=float(np.median(iv.boot_sd[sup] / np.maximum(fit.stderr[sup], 1e-300))),
        draws=iv.draws,
        cpu_s=round(seconds, 2),
    )


def report(rows) -> str:
    out = [
        "| system | noise | runs | coefficients | Gauss–Newton | bootstrap | union | median sd ratio boot/GN |",
        "|---|---|---|---|---|---|---|---|",
    ]
    groups = sorted({(r["system"], r["kind"], r["noise"]) for r in rows})
    for g in groups + [("all", "", 0.0)]:
        rr = [r for r in rows if g[0] == "all" or (r["system"], r["kind"], r["noise"]) == g]
        n = sum(r["n_true"] for r in rr)
        cells = [f"{sum(r[k] for r in rr)}/{n} ({sum(r[k] for r in rr) / n:.1%})" for k in ("gn", "boot", "union")]
        name = "all" if g[0] == "all" else f"{g[0]} | {g[1]} {g[2]:.0%}"
        sd = np.median([r["sd_ratio"] for r in rr])
        out.append(
            f"| {name}{' | ' if g[0] == 'all' else ''} | {len(rr)} | {n} | " + " | ".join(cells) + f" | {sd:.2f} |"
        )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--systems", nargs="+", default=["brusselator", "fitzhugh-nagumo", "lotka-volterra", "damped-linear"]
    )
    ap.add_argument("--seeds", type=int, nargs=2, default=[300, 310], help="first and last + 1")
    ap.add_argument("--kinds", nargs="+", default=["additive", "proportional"])
    ap.add_argument("--noises", type=float, nargs="+", default=[0.01, 0.05])
    ap.add_argument("--draws", type=int, default=30)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--report", type=Path, default=None)
    args = ap.parse_args()
    if args.report is not None:
        print(report([json.loads(line) for line in args.report.read_text().splitlines() if line.strip()]))
        return
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    for seed in range(*args.seeds):
        for system in args.systems:
            for kind in args.kinds:
                for noise in args.noises:
                    row = run(system, seed, kind, noise, args.draws)
                    print(json.dumps(row), flush=True)
                    if args.out is not None:
                        with args.out.open("a") as fh:
                            fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
