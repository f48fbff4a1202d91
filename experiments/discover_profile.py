"""Where the CPU seconds of one `odeflow discover` run go, on one benchmark instance.

Runs the benchmark's neural route (benchmarks/discover_family.py: DiscoverOptions(ensemble=0), the
instance's library, NeuralFitConfig()) under cProfile and times its phases by process CPU time
(time.process_time, one torch thread): neural fit, sampling + regression (select_model), the search
on the observations (refine_on_observations, split into LM fits, Jacobians, predicted BICs), the
parametric bootstrap intervals, and the confidence checks.

  OMP_NUM_THREADS=1 PYTHONPATH=src python experiments/discover_profile.py brusselator 0 0.05 proportional \
      --stats /tmp/brus.prof
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import time
import warnings
from pathlib import Path
from typing import Callable, Dict

import torch

from odeflow.discover import NeuralFitConfig, confidence, discover_equations, intervals, model_search, pipeline
from odeflow.discover import observation_fit as observation_fit
from odeflow.discover.library import parse_library
from odeflow.discover.options import DiscoverOptions

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from discover_family import observe  # noqa: E402

CPU: Dict[str, float] = {}
CALLS: Dict[str, int] = {}


def timed(module, name: str, label: str) -> None:
    """Wrap module.name so that its CPU seconds add up under label (outermost call only)."""
    inner: Callable = getattr(module, name)
    depth = [0]

    def wrapper(*a, **k):
        depth[0] += 1
        start = time.process_time()
        try:
            return inner(*a, **k)
        finally:
            depth[0] -= 1
            if depth[0] == 0:
                CPU[label] = CPU.get(label, 0.0) + time.process_time() - start
                CALLS[label] = CALLS.get(label, 0) + 1

    setattr(module, name, wrapper)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("system")
    ap.add_argument("instance", type=int)
    ap.add_argument("noise", type=float)
    ap.add_argument("kind", default="proportional")
    ap.add_argument("--stats", type=Path, default=None, help="write the cProfile stats here")
    ap.add_argument("--top", type=int, default=35)
    args = ap.parse_args()
    torch.set_num_threads(1)
    inst, t, x = observe(args.system, args.instance, args.noise, args.kind)
    timed(pipeline, "fit_neural_ode", "neural fit")
    timed(pipeline, "select_model", "regression (select_model)")
    timed(pipeline, "refine_on_observations", "search on the observations")
    timed(pipeline, "coefficient_intervals", "bootstrap intervals")
    timed(pipeline, "assess", "confidence checks")
    # inside the search (module-level names the search calls)
    timed(model_search, "fit_on_observations", "  search: LM fits")
    timed(model_search, "predicted_bics", "  search: predicted BICs")
    timed(intervals, "fit_on_observations", "  bootstrap: LM refits")
    timed(observation_fit, "jacobian", "  (all) finite-difference Jacobians")
    timed(confidence, "competing_supports", "  confidence: competing supports")
    opts = DiscoverOptions(ensemble=0, library=parse_library(inst.library))
    prof = cProfile.Profile()
    start = time.process_time()
    wall = time.time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prof.enable()
        res = discover_equations(t, x, list(inst.variables), opts, NeuralFitConfig())
        prof.disable()
    total = time.process_time() - start
    truth = inst.truth(res.equations.terms)
    ok = bool(((res.equations.coefficients != 0) == (truth != 0)).all())
    print(
        json.dumps(
            dict(
                system=args.system,
                instance=args.instance,
                noise=args.noise,
                kind=args.kind,
                exact=ok,
                cpu_s=round(total, 1),
                wall_s=round(time.time() - wall, 1),
                fits=res.refinement.evaluated if res.refinement else None,
                confidence=res.confidence.level if res.confidence else None,
            )
        )
    )
    for label, sec in CPU.items():
        print(f"{label:45s} {sec:8.1f} s  {100 * sec / total:5.1f} %  ({CALLS[label]} calls)")
    stats = pstats.Stats(prof)
    if args.stats is not None:
        stats.dump_stats(str(args.stats))
    stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
