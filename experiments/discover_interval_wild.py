"""Why are intervals missed under proportional noise? Gauss–Newton, the parametric bootstrap and the
wild bootstrap (odeflow.discover.intervals, `resample`) side by side on fresh instances, with the
rk4 substeps the pipeline uses (2 × auto_substeps), and a repeated-draw check of one instance.

--fresh: per family and seed (one noise level per seed: 1% for even seeds, 5% for odd, so that no
two rows share a noise draw), the true support fitted as the search fits it (unweighted fit, noise
model, weighted refit; segments started at the observations, no neural fit), then 30 refits of
each bootstrap; a row per run with the coefficients, truth, Gauss–Newton se and each bootstrap's
sd and bias (the report builds the bias-corrected normal intervals and their unions with GN).

--repeat SYSTEM SEED: the instance's clean trajectory with `draws` fresh noise draws; per
coefficient the mean and sd of z = (ĉ − c)/se over the draws (calibrated: mean 0, sd 1), with the
weights from the fitted noise model (`--weights fitted`) or the true noise sd (`--weights true`).

  OMP_NUM_THREADS=1 PYTHONPATH=src python experiments/discover_interval_wild.py --fresh 400 411 \\
      --out docs/dynamics/discover_interval_wild.jsonl
  python experiments/discover_interval_wild.py --report docs/dynamics/discover_interval_wild.jsonl
  OMP_NUM_THREADS=1 PYTHONPATH=src python experiments/discover_interval_wild.py --repeat brusselator 402
"""

from __future__ import annotations

import argparse
import collections
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from odeflow.data.discovery_families import random_instance
from odeflow.discover.intervals import Z95, coefficient_intervals
from odeflow.discover.library import parse_library
from odeflow.discover.model_search import variance_of
from odeflow.discover.neural_fit import auto_substeps
from odeflow.discover.observation_fit import fit_on_observations, segments_of

SYSTEMS = ["brusselator", "fitzhugh-nagumo", "sir", "lotka-volterra", "van-der-pol", "duffing", "damped-linear"]


def _instance(system: str, seed: int, kind: str, noise: float):
    inst = random_instance(system, seed)
    n_obs = int(np.random.default_rng([seed, 7]).integers(80, 201))
    lib = parse_library(inst.library).build(inst.variables)
    t, x, clean = inst.observe(n_obs, noise, seed, kind)
    traj = torch.zeros(len(t), dtype=torch.long)
    return inst, lib, inst.truth(lib.terms), t, x, clean, traj, 2 * auto_substeps(t, x, traj, x.std(0))


def _weighted_fit(lib, truth, t, x, traj, substeps, weights=None):
    sup = truth != 0
    seg = segments_of(t, x, traj, substeps=substeps)
    fit = fit_on_observations(lib, sup, truth, seg)
    _, level = fit.raw_residuals(seg)
    seg = seg.with_weights(variance_of(fit, seg).weights(level) if weights is None else weights(seg))
    return fit_on_observations(lib, sup, fit.coefficients, seg, fit.starts), seg


def fresh(system: str, seed: int, kind: str, draws: int = 30) -> dict:
    noise = 0.01 if seed % 2 == 0 else 0.05
    inst, lib, truth, t, x, _, traj, substeps = _instance(system, seed, kind, noise)
    fit, seg = _weighted_fit(lib, truth, t, x, traj, substeps)
    sup = truth != 0
    row = dict(
        system=system,
        seed=seed,
        kind=kind,
        noise=noise,
        n=len(t),
        substeps=substeps,
        c=fit.coefficients[sup].tolist(),
        truth=truth[sup].tolist(),
        se=fit.stderr[sup].tolist(),
    )
    for resample in ("parametric", "wild"):
        clock = time.process_time()
        iv = coefficient_intervals(lib, fit, seg, draws, seed, resample=resample)
        row[resample] = dict(
            sd=iv.boot_sd[sup].tolist(), bias=iv.boot_bias[sup].tolist(), cpu_s=round(time.process_time() - clock, 1)
        )
    return row


def repeat(system: str, seed: int, kind: str, noise: float, draws: int, weights: str) -> dict:
    inst, lib, truth, t, _, clean, traj, substeps = _instance(system, seed, kind, noise)
    rng = np.random.default_rng(12345)
    size = clean if kind == "proportional" else clean.std(0, keepdim=True)
    true_w = None
    if weights == "true":
        sd = (noise * size).expand_as(clean).numpy()
        true_w = lambda seg: 1.0 / sd[seg.rows.numpy()]  # noqa: E731
    z = []
    for _ in range(draws):
        x = clean + noise * size * torch.as_tensor(rng.standard_normal(tuple(clean.shape)))
        fit, _ = _weighted_fit(lib, truth, t, x, traj, substeps, true_w)
        z.append((fit.coefficients[truth != 0] - truth[truth != 0]) / fit.stderr[truth != 0])
    za = np.array(z)
    return dict(
        system=system,
        seed=seed,
        kind=kind,
        noise=noise,
        weights=weights,
        draws=draws,
        substeps=substeps,
        mean_z=np.round(za.mean(0), 3).tolist(),
        sd_z=np.round(za.std(0, ddof=1), 3).tolist(),
        gn_coverage=float((np.abs(za) <= Z95).mean()),
    )


def report(rows) -> str:
    keys = ["gn", "parametric", "gn+parametric", "wild", "gn+wild", "gn+both"]
    agg: dict = collections.defaultdict(collections.Counter)
    for r in rows:
        c, tr, se = (np.array(r[k]) for k in ("c", "truth", "se"))
        iv = {"gn": (c - Z95 * se, c + Z95 * se)}
        for rs in ("parametric", "wild"):
            b, s = np.array(r[rs]["bias"]), np.array(r[rs]["sd"])
            iv[rs] = (c - b - Z95 * s, c - b + Z95 * s)
            iv["gn+" + rs] = (np.minimum(iv["gn"][0], iv[rs][0]), np.maximum(iv["gn"][1], iv[rs][1]))
        iv["gn+both"] = (
            np.minimum(iv["gn+parametric"][0], iv["wild"][0]),
            np.maximum(iv["gn+parametric"][1], iv["wild"][1]),
        )
        for cell in ((r["system"], f"{r['kind']} {r['noise']:.0%}"), ("all", "")):
            a = agg[cell]
            a["runs"] += 1
            a["n"] += len(c)
            for k, (lo, hi) in iv.items():
                a[k] += int(((lo <= tr) & (tr <= hi)).sum())
    out = [
        "| system | noise | runs | coefficients | " + " | ".join(keys) + " |",
        "|---|---|---|---|" + "---|" * len(keys),
    ]
    for (system, noise), a in sorted(agg.items(), key=lambda kv: (kv[0][0] == "all", kv[0])):
        cells = [f"{a[k]}/{a['n']} ({a[k] / a['n']:.0%})" for k in keys]
        out.append(f"| {system} | {noise} | {a['runs']} | {a['n']} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fresh", type=int, nargs=2, default=None, help="first and last + 1 seed")
    ap.add_argument("--repeat", nargs=2, default=None, metavar=("SYSTEM", "SEED"))
    ap.add_argument("--systems", nargs="+", default=SYSTEMS)
    ap.add_argument("--kind", default="proportional", choices=["additive", "proportional"])
    ap.add_argument("--noise", type=float, default=0.01, help="--repeat's noise level")
    ap.add_argument("--draws", type=int, default=30)
    ap.add_argument("--weights", default="fitted", choices=["fitted", "true"])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--report", type=Path, default=None)
    args = ap.parse_args()
    if args.report is not None:
        print(report([json.loads(line) for line in args.report.read_text().splitlines() if line.strip()]))
        return
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    if args.repeat is not None:
        rows = [repeat(args.repeat[0], int(args.repeat[1]), args.kind, args.noise, args.draws, args.weights)]
    else:
        lo, hi = args.fresh or (400, 411)
        rows = (fresh(s, seed, args.kind, args.draws) for seed in range(lo, hi) for s in args.systems)
    for row in rows:
        print(json.dumps(row), flush=True)
        if args.out is not None:
            with args.out.open("a") as fh:
                fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
