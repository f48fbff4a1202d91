"""The search on the observations and its bootstrap intervals with the fast computations
(observation_fit.FAST: polynomial fields by odeflow.discover.sparse_field, predicted BICs with the
segment starts projected out once) against the reference ones (Library.evaluate, one full least
squares per predicted BIC), side by side.

Per instance (random families, 5 % proportional noise, 150 observations, no neural fit: segments
started at the observations, the search started from the regression on the clean states' exact
derivatives with one true term dropped and one spurious term added, so that it has work to do),
both settings run in one process, interleaved, and the process CPU time (time.process_time) of
each is recorded with the chosen support, coefficients, BIC, intervals and confidence; the rows
say whether the answers agree.

  OMP_NUM_THREADS=1 PYTHONPATH=src python experiments/discover_fast_field.py --out docs/dynamics/discover_fast_field.jsonl
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
from odeflow.discover import observation_fit
from odeflow.discover.intervals import coefficient_intervals
from odeflow.discover.model_search import SearchProblem, refine_on_observations
from odeflow.discover.observation_fit import segments_of
from odeflow.discover.options import SearchOptions, SelectionOptions
from odeflow.discover.selection import polynomial_library, polynomial_terms, select_model


def problem(system: str, seed: int, noise: float, n: int):
    inst = random_instance(system, seed)
    t, x, clean = inst.observe(n, noise, seed, kind="proportional")
    xdot = inst.field(None, clean).numpy()
    groups = np.minimum((5 * t.numpy() / t[-1].item()).astype(int), 4)
    sel = select_model(clean.numpy(), xdot, inst.variables, groups, options=SelectionOptions(ensemble=0))
    theta, terms = polynomial_library(clean.numpy(), inst.variables, 3)
    truth = inst.truth(terms)
    rng = np.random.default_rng(seed)
    wrong = truth.copy()
    on = list(zip(*np.nonzero(truth)))
    i, k = on[rng.integers(len(on))]
    wrong[i, k] = 0.0
    off = [(i, k) for i, k in zip(*np.nonzero(truth == 0)) if sum(polynomial_terms(inst.variables, 3)[k]) <= 2]
    j, m = off[rng.integers(len(off))]
    wrong[j, m] = 0.1 * np.abs(truth).max()
    sel.coefficients = wrong
    seg = segments_of(t, x, torch.zeros(len(t), dtype=torch.long), substeps=4)
    keep = np.ones(len(terms), dtype=bool)
    sp = SearchProblem(theta, xdot, polynomial_terms(inst.variables, 3), keep, seg, terms, inst.variables)
    return inst, sel, sp, truth


def run(sel, sp, fast: bool, bootstrap: int):
    observation_fit.FAST = fast
    start = time.process_time()
    found = refine_on_observations(sel, sp, SearchOptions(ensemble=0))
    scored = found.segments if found.segments is not None else sp.seg
    iv = coefficient_intervals(sp.library, found.fit, scored, bootstrap, 0)
    return found, iv, time.process_time() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--systems", nargs="+", default=["brusselator", "fitzhugh-nagumo", "lorenz", "lotka-volterra"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[700, 701])
    ap.add_argument("--noise", type=float, default=0.05)
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--bootstrap", type=int, default=30)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    for seed in args.seeds:
        for system in args.systems:
            inst, sel, sp, truth = problem(system, seed, args.noise, args.n)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref, iv_ref, cpu_ref = run(sel, sp, False, args.bootstrap)
                new, iv_new, cpu_new = run(sel, sp, True, args.bootstrap)
            observation_fit.FAST = True
            scale = np.abs(ref.fit.coefficients).max()
            row = dict(
                system=system,
                seed=seed,
                noise=args.noise,
                same_support=bool(np.array_equal(ref.fit.support, new.fit.support)),
                exact=bool(np.array_equal(new.fit.coefficients != 0, truth != 0)),
                max_coef_diff=float(np.abs(ref.fit.coefficients - new.fit.coefficients).max() / scale),
                bic_diff=float(abs(ref.bic - new.bic)),
                max_interval_diff=float(
                    max(np.abs(iv_ref.lower - iv_new.lower).max(), np.abs(iv_ref.upper - iv_new.upper).max()) / scale
                ),
                fits_ref=ref.evaluated,
                fits_new=new.evaluated,
                cpu_ref=round(cpu_ref, 2),
                cpu_new=round(cpu_new, 2),
                speedup=round(cpu_ref / cpu_new, 2),
            )
            print(json.dumps(row), flush=True)
            if args.out is not None:
                with args.out.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
