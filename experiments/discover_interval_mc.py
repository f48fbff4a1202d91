"""Are the ± intervals of `odeflow discover` calibrated? A Monte Carlo over noise draws.

For one family instance (odeflow.data.discovery_families; the seed is the instance seed, the
benchmark's instance i has 100 + i), the true support is fitted to noisy
observations as the search fits every candidate (odeflow.discover.observation_fit: multiple
shooting, segments started at the observations, no neural fit; the noise model of
odeflow.discover.noise_model estimated on a first fit, then the weighted refit), and each true
coefficient's z = (ĉ − c)/se is recorded, se the Gauss–Newton standard error the pipeline reports.
Draw 0 is the benchmark's own draw (times and noise from the instance seed); draws k ≥ 1 use seed
1000·seed + k (fresh times and noise). Calibrated intervals: z ~ N(0, 1), nominal 95% coverage.

Usage: OMP_NUM_THREADS=1 PYTHONPATH=src python experiments/discover_interval_mc.py SYSTEM KIND NOISE \
           SUBSTEPS SEEDS DRAWS >> docs/dynamics/discover_interval_mc.jsonl
       e.g. fitzhugh-nagumo proportional 0.01 4 100,101,102 25
"""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import torch

from odeflow.data.discovery_families import random_instance
from odeflow.discover.library import parse_library
from odeflow.discover.model_search import variance_of
from odeflow.discover.observation_fit import fit_on_observations, segments_of


def z_scores(system: str, kind: str, noise: float, substeps: int, seed: int, draws: int) -> tuple:
    """(library terms of the true support, z [draws, k], observations per draw)."""
    inst = random_instance(system, seed)
    n_obs = int(np.random.default_rng([seed, 7]).integers(80, 201))  # as benchmarks/discover_family.py
    lib = parse_library(inst.library).build(inst.variables)
    truth = inst.truth(lib.terms)
    sup = truth != 0
    zs = []
    for k in range(draws):
        t, x, _ = inst.observe(n_obs, noise, seed if k == 0 else seed * 1000 + k, kind)
        seg = segments_of(t, x, torch.zeros(len(t), dtype=torch.long), substeps=substeps)
        fit = fit_on_observations(lib, sup, truth, seg)
        _, level = fit.raw_residuals(seg)
        seg = seg.with_weights(variance_of(fit, seg).weights(level))
        fit = fit_on_observations(lib, sup, fit.coefficients, seg, fit.starts)
        zs.append((fit.coefficients[sup] - truth[sup]) / fit.stderr[sup])
    return [lib.terms[j] for j in np.nonzero(sup)[1]], np.array(zs), n_obs


def main() -> None:
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    system, kind, noise, substeps = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    for seed in [int(s) for s in sys.argv[5].split(",")]:
        terms, z, n = z_scores(system, kind, noise, substeps, seed, int(sys.argv[6]))
        row = dict(
            system=system,
            kind=kind,
            noise=noise,
            seed=seed,
            n=n,
            sub=substeps,
            draws=len(z),
            draw0="seed",
            terms=terms,
            mean_z=np.round(z.mean(0), 2).tolist(),
            sd_z=np.round(z.std(0), 2).tolist(),
            cover=float((np.abs(z) <= 1.96).mean()),
            any_miss=float((np.abs(z) > 1.96).any(axis=1).mean()),
        )
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
