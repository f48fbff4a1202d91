"""How reliable is `inclusion.csv`? Of the terms given inclusion p, how many are true?

Setting (no neural fit, so that many instances fit in minutes): for each family
(odeflow.data.discovery_families, plus the pendulum with its Fourier library), instances
`--seeds`, 200 observations with 5% (and 1%) additive or proportional noise; the regression on the
clean states' exact derivatives gives the start and the candidate supports; the search on the noisy
observations (odeflow.discover.model_search, default SearchOptions with ensemble 50) returns
each term's inclusion, the fraction of block-bootstrap resamples whose BIC choice holds it.
Every term of every equation whose inclusion is above 0 is a row: (inclusion, true term?).

The table bins the stated inclusion and reports the fraction of true terms in each bin: a
calibrated inclusion p would be true in about p of the cases.

Usage: OMP_NUM_THREADS=1 PYTHONPATH=src python experiments/discover_inclusion.py --out FILE.jsonl
       python experiments/discover_inclusion.py --report FILE.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from odeflow.data.discovery_families import FAMILIES, NONPOLYNOMIAL, random_instance
from odeflow.discover.library import parse_library
from odeflow.discover.model_search import SearchProblem, refine_on_observations
from odeflow.discover.observation_fit import segments_of
from odeflow.discover.options import SearchOptions, SelectionOptions
from odeflow.discover.selection import select_model

BINS = [0.0, 0.5, 0.8, 0.95, 1.0001]


def one(system: str, seed: int, noise: float, kind: str) -> dict:
    inst = random_instance(system, seed)
    t, x, clean = inst.observe(200, noise, seed, kind)
    xdot = inst.field(None, clean).numpy()
    spec = parse_library(inst.library)
    lib = spec.build(inst.variables)
    groups = np.minimum((5 * t.numpy() / t[-1].item()).astype(int), 4)
    sel = select_model(clean.numpy(), xdot, inst.variables, groups, spec.degrees, (), SelectionOptions(ensemble=0), lib)
    seg = segments_of(t, x, torch.zeros(len(t), dtype=torch.long), substeps=4)
    keep = np.ones(len(lib), dtype=bool)
    problem = SearchProblem(lib.numpy(clean.numpy()), xdot, lib, keep, seg, lib.terms, inst.variables)
    found = refine_on_observations(sel, problem, SearchOptions(ensemble=50, seed=seed))
    truth = inst.truth(lib.terms) != 0
    on = found.inclusion > 0
    return dict(
        system=system,
        seed=seed,
        noise=noise,
        kind=kind,
        exact=bool(np.array_equal(found.fit.support, truth)),
        inclusion=found.inclusion[on].tolist(),
        true=truth[on].tolist(),
        chosen=found.fit.support[on].tolist(),
    )


def report(rows: list) -> str:
    p = np.concatenate([r["inclusion"] for r in rows])
    ok = np.concatenate([r["true"] for r in rows]).astype(bool)
    lines = ["| stated inclusion | terms | true | fraction true |", "|---|---|---|---|"]
    for lo, hi in zip(BINS[:-1], BINS[1:]):
        on = (p > lo) & (p < hi) if lo == 0 else (p >= lo) & (p < hi)
        if on.any():
            lines.append(f"| {lo:.2f}–{min(hi, 1):.2f} | {on.sum()} | {ok[on].sum()} | {ok[on].mean():.2f} |")
    exact = sum(r["exact"] for r in rows)
    lines.append(
        f"\n{len(rows)} runs, {exact} exact supports; mean stated inclusion of true terms among terms "
        f"with p > 0: {p[ok].mean():.2f}, of false ones {p[~ok].mean() if (~ok).any() else float('nan'):.2f}"
    )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("docs/dynamics/discover_inclusion.jsonl"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[201])
    ap.add_argument("--noise", type=float, nargs="+", default=[0.05])
    ap.add_argument("--systems", nargs="+", default=[*FAMILIES, *NONPOLYNOMIAL])
    ap.add_argument("--report", type=Path, default=None)
    args = ap.parse_args()
    if args.report:
        print(report([json.loads(line) for line in args.report.read_text().splitlines() if line.strip()]))
        return
    done = set()
    if args.out.is_file():
        for line in args.out.read_text().splitlines():
            r = json.loads(line)
            done.add((r["system"], r["seed"], r["noise"], r["kind"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for noise in args.noise:
        for seed in args.seeds:
            for system in args.systems:
                for kind in ("additive", "proportional"):
                    if (system, seed, noise, kind) in done:
                        continue
                    start = time.time()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        row = one(system, seed, noise, kind)
                    row["seconds"] = round(time.time() - start, 1)
                    with args.out.open("a") as fh:
                        fh.write(json.dumps(row) + "\n")
                    print(system, seed, noise, kind, row["exact"], row["seconds"], flush=True)


if __name__ == "__main__":
    main()
