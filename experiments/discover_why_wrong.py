"""Why do the competitive Lotka–Volterra and the Lorenz-proportional benchmark runs fail? What any
search could at best reach: the TRUE support fitted on the observations as the search fits it
(segments started at the clean states, rk4 with 2 × auto_substeps, unweighted fit, noise model
chosen on its residuals, weighted refit), no neural fit.

--sweep A B: per family, noise kind and level and instance A..B−1 (seed 100 + i, as the benchmark's
instances), the smallest |ĉ|/se of a true term against the Bonferroni bound z* of
odeflow.discover.confidence.weak_terms (the "weakly supported term" check), and which true terms
fall below it: data that cannot confirm the true support.

--compare SYSTEM KIND NOISE I --support FILE: the true support against another support (a JSON
{variable: {term: coefficient}} such as a benchmark row's chosen model) under several noise models
and rk4 step counts: does the criterion itself prefer the wrong support?

  OMP_NUM_THREADS=1 PYTHONPATH=src python experiments/discover_why_wrong.py --sweep 20 25 \\
      --out docs/dynamics/discover_why_wrong.jsonl
  # the benchmark's Lorenz 5 % proportional answer (instance 0) and the pipeline's competitive
  # Lotka–Volterra answer on instance 20 (1 % additive), each against the true support
  OMP_NUM_THREADS=1 PYTHONPATH=src python experiments/discover_why_wrong.py --compare lorenz \\
      proportional 0.05 0 --support docs/dynamics/discover_why_wrong_lorenz_pair.json
  OMP_NUM_THREADS=1 PYTHONPATH=src python experiments/discover_why_wrong.py --compare competitive-lv \\
      additive 0.01 20 --support docs/dynamics/discover_why_wrong_clv20.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from discover_family import SYSTEMS, observe  # noqa: E402

from odeflow.discover.confidence import weak_terms  # noqa: E402
from odeflow.discover.library import parse_library  # noqa: E402
from odeflow.discover.model_search import variance_of  # noqa: E402
from odeflow.discover.neural_fit import auto_substeps  # noqa: E402
from odeflow.discover.observation_fit import fit_on_observations, segments_of  # noqa: E402


def true_fit(system: str, kind: str, noise: float, i: int, kinds=None, substeps=None):
    """(instance, library, weighted segments, fit of the true support) for benchmark instance i."""
    inst, t, x = observe(system, i, noise, kind)
    seed = 100 + i
    n_obs = int(np.random.default_rng([seed, 7]).integers(80, 201))  # as discover_family.observe
    _, _, clean = inst.observe(n_obs, noise, seed, kind=kind)
    library = parse_library(inst.library).build(tuple(inst.variables), ())
    truth = inst.truth(library.terms)
    traj = torch.zeros(len(t), dtype=torch.long)
    steps = substeps or 2 * auto_substeps(t, x, traj, x.std(0))
    seg = segments_of(t, x, traj, clean, substeps=steps)
    first = fit_on_observations(library, truth != 0, truth, seg)
    noise_model = variance_of(first, seg) if kinds is None else variance_of(first, seg, kinds)
    _, level = first.raw_residuals(seg)
    seg = seg.with_weights(noise_model.weights(level))
    fit = fit_on_observations(library, truth != 0, first.coefficients, seg, first.starts)
    return inst, library, seg, fit, noise_model


def sweep(start: int, stop: int, out: Path) -> None:
    torch.set_num_threads(1)
    with out.open("a") as fh:
        for system in SYSTEMS:
            for kind in ("additive", "proportional"):
                for noise in (0.01, 0.05):
                    for i in range(start, stop):
                        inst, library, seg, fit, nm = true_fit(system, kind, noise, i)
                        allowed = np.ones(len(library), dtype=bool)
                        weak, bound = weak_terms(fit.coefficients, fit.support, fit.stderr, allowed, 0.05)
                        z = np.abs(fit.coefficients[fit.support]) / np.maximum(fit.stderr[fit.support], 1e-300)
                        row = dict(
                            system=system,
                            kind=kind,
                            noise=noise,
                            instance=i,
                            noise_model=nm.kinds,
                            min_z=float(z.min()),
                            bound=bound,
                            weak=[f"{library.terms[j]} in d{inst.variables[e]}/dt ({v:.2f})" for e, j, v in weak],
                        )
                        fh.write(json.dumps(row) + "\n")
                        print(json.dumps(row), flush=True)


def compare(system: str, kind: str, noise: float, i: int, support: dict) -> None:
    torch.set_num_threads(1)
    for kinds, steps in ((None, None), (("constant",), None), (None, 24)):
        inst, library, seg, fit, nm = true_fit(system, kind, noise, i, kinds, steps)
        other = np.zeros(fit.support.shape, dtype=bool)
        start = np.zeros(fit.support.shape)
        for e, v in enumerate(inst.variables):
            for term, c in support[v].items():
                other[e, library.terms.index(term)] = True
                start[e, library.terms.index(term)] = c
        alt = fit_on_observations(library, other, start, seg, fit.starts, max_iter=60)
        print(
            f"noise model {nm.kinds}, rk4 steps {seg.substeps}: true support BIC {fit.bic:.1f}, "
            f"other support BIC {alt.bic:.1f} (converged {alt.converged})",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sweep", type=int, nargs=2, metavar=("FIRST", "STOP"))
    ap.add_argument("--out", type=Path, default=Path("docs/dynamics/discover_why_wrong.jsonl"))
    ap.add_argument("--compare", nargs=4, metavar=("SYSTEM", "KIND", "NOISE", "INSTANCE"))
    ap.add_argument("--support", type=Path, help="with --compare: JSON {variable: {term: coefficient}}")
    args = ap.parse_args()
    if args.sweep:
        sweep(args.sweep[0], args.sweep[1], args.out)
    elif args.compare:
        if args.support is None:
            raise SystemExit("--compare needs --support FILE")
        system, kind, noise, i = args.compare
        compare(system, kind, float(noise), int(i), json.loads(args.support.read_text()))
    else:
        raise SystemExit("give --sweep FIRST STOP or --compare SYSTEM KIND NOISE INSTANCE --support FILE")


if __name__ == "__main__":
    main()
