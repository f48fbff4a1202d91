"""Does the search reach a sparse support that a denser one imitates along the data?

A randomized family (odeflow.discover.collapse): Brusselator and FitzHugh–Nagumo instances
(odeflow.data.discovery_families, seeds given), 150 observations at irregular times, additive
noise. The search on the observations (odeflow.discover.model_search, no neural fit) starts from
the model in which the first equation's constant is replaced by the least-squares combination of
v, v², v³ (v the other variable) on the clean states, and the regression offers no other support
(its table holds only that start), as on the benchmark's Brusselator run whose neural fit was poor.
Each instance runs with collapse=0 (the earlier search) and the default (collapse=3), side by side;
a row per run: exact support, BIC of the answer and of the true support where it was fitted,
models fitted, CPU seconds.

  OMP_NUM_THREADS=1 PYTHONPATH=src python experiments/discover_collapse.py --seeds 40 52 \\
      --out docs/dynamics/discover_collapse.jsonl
  python experiments/discover_collapse.py --report docs/dynamics/discover_collapse.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from odeflow.data.discovery_families import random_instance
from odeflow.discover.model_search import SearchProblem, refine_on_observations
from odeflow.discover.observation_fit import segments_of
from odeflow.discover.options import SearchOptions, SelectionOptions
from odeflow.discover.selection import polynomial_library, polynomial_terms, select_model


def imitated_start(system: str, seed: int, noise: float, n: int = 150):
    """(instance, selection whose model imitates the constant, search problem, true support)."""
    inst = random_instance(system, seed)
    t, x, clean = inst.observe(n, noise, seed)
    theta, terms = polynomial_library(clean.numpy(), inst.variables, 3)
    truth = inst.truth(terms)
    xdot = inst.field(None, clean).numpy()
    other = inst.variables[-1]
    sup = truth != 0
    sup[0, terms.index("1")] = False
    for k in (other, f"{other}^2", f"{other}^3"):
        sup[0, terms.index(k)] = True
    start = truth.copy()
    start[0] = 0.0
    start[0, sup[0]] = np.linalg.lstsq(theta[:, sup[0]], xdot[:, 0], rcond=None)[0]
    samples = theta @ start.T  # a field that learned the imitation
    groups = np.minimum((5 * t.numpy() / t[-1].item()).astype(int), 4)
    sel = select_model(clean.numpy(), samples, inst.variables, groups, options=SelectionOptions(ensemble=0))
    sel.coefficients = start
    sel.table = [[(start[i] != 0, 0, 0.0)] for i in range(len(inst.variables))]
    seg = segments_of(t, x, torch.zeros(len(t), dtype=torch.long), substeps=4)
    keep = np.ones(len(terms), dtype=bool)
    problem = SearchProblem(theta, samples, polynomial_terms(inst.variables, 3), keep, seg, terms, inst.variables)
    return inst, sel, problem, truth != 0


def run(system: str, seed: int, noise: float, collapse: int) -> dict:
    inst, sel, problem, true = imitated_start(system, seed, noise)
    clock = time.process_time()
    found = refine_on_observations(sel, problem, SearchOptions(ensemble=0, collapse=collapse))
    seconds = time.process_time() - clock
    fitted = [f.bic for f in found.fits if np.array_equal(f.support, true)]
    return dict(
        system=system,
        seed=seed,
        noise=noise,
        collapse=collapse,
        exact=bool(np.array_equal(found.fit.support, true)),
        bic=round(found.bic, 2),
        true_bic=round(fitted[0], 2) if fitted else None,
        fits=found.evaluated,
        cpu_s=round(seconds, 2),
        moves=found.moves,
    )


def report(rows) -> str:
    out = ["| system | noise | collapse | exact | models fitted (mean) | CPU s (mean) |", "|---|---|---|---|---|---|"]
    keys = sorted({(r["system"], r["noise"], r["collapse"]) for r in rows})
    for s, nz, c in keys:
        rr = [r for r in rows if (r["system"], r["noise"], r["collapse"]) == (s, nz, c)]
        ex = sum(r["exact"] for r in rr)
        fits = np.mean([r["fits"] for r in rr])
        cpu = np.mean([r["cpu_s"] for r in rr])
        out.append(f"| {s} | {nz:.0%} | {c} | {ex}/{len(rr)} | {fits:.1f} | {cpu:.1f} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--systems", nargs="+", default=["brusselator", "fitzhugh-nagumo"])
    ap.add_argument("--seeds", type=int, nargs=2, default=[40, 52], help="first and last + 1")
    ap.add_argument("--noises", type=float, nargs="+", default=[0.05])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--report", type=Path, default=None)
    args = ap.parse_args()
    if args.report is not None:
        print(report([json.loads(line) for line in args.report.read_text().splitlines() if line.strip()]))
        return
    torch.set_num_threads(1)
    for system in args.systems:
        for seed in range(*args.seeds):
            for noise in args.noises:
                for collapse in (0, 3):
                    row = run(system, seed, noise, collapse)
                    print(json.dumps({k: v for k, v in row.items() if k != "moves"}), flush=True)
                    if args.out is not None:
                        with args.out.open("a") as fh:
                            fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
