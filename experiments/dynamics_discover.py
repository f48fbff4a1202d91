"""`odeflow discover`'s default path vs the old fixed-threshold rule and SINDy on the raw data
(docs/dynamics.md §3; seed 002's recipe, issue 22's defaults).

Data: Lotka–Volterra x' = x − 0.5xy, y' = 0.5xy − y from (1, 1) on [0, 15], and the cubic
x' = x − x³ from 0.1 on [0, 8]; 100 observations at sorted uniform random times, Gaussian noise
of std (noise × std of each variable). One neural ODE fit per series with the defaults
(odeflow.discover.fit_neural_ode: rate-scaled standardized field, multiple shooting, early stopping on
held-out observations), then from the same fit:
  default        conservation laws, samples along the data, cross-validated selection over degrees
                 1–3, then the search on the observations (select_from_fit, nothing passed)
  --no-refine    the same without the search (the regression's model)
  fixed d, λ     the pre-issue-22 rule on the same samples: degree d, pysindy's STLSQ |ξ| < λ
and, without a neural fit: weak-form SINDy with the same selection (`--method weak`) and pysindy on
the irregular noisy samples with its finite differences, plain and smoothed.
Reported per row: max relative error over the true terms (a missed term counts 100%), number of
spurious terms (nonzero where the truth is zero), the equations.

Usage: OMP_NUM_THREADS=1 PYTHONPATH=src python experiments/dynamics_discover.py
"""

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from odeflow.data import irregular_series
from odeflow.data.discovery_systems import true_coefficient_rows
from odeflow.discover import NeuralFitConfig, discover_equations, fit_neural_ode, fit_sindy
from odeflow.discover.library import LibrarySpec
from odeflow.discover.options import DiscoverOptions
from odeflow.discover.pipeline import Observations, select_from_fit
from odeflow.discover.sindy import Equations, import_pysindy

FIXED = [(2, 0.05), (3, 0.05), (3, 0.1)]


def score(eq: Equations, system: str) -> dict:
    truth = true_coefficient_rows(system, eq.terms).numpy()
    active = truth != 0
    rel = np.abs(eq.coefficients[active] - truth[active]) / np.abs(truth[active])
    return dict(
        max_rel_err=float(rel.max()),
        spurious=int(np.count_nonzero(eq.coefficients[~active])),
        equations=eq.lines(3, intervals=False),
    )


def smoothed_sindy(t, x, names, degree, threshold):
    ps = import_pysindy()
    model = ps.SINDy(
        optimizer=ps.STLSQ(threshold=threshold),
        feature_library=ps.PolynomialLibrary(degree=degree),
        differentiation_method=ps.SmoothedFiniteDifference(),
    )
    model.fit(np.asarray(x), t=np.asarray(t), feature_names=list(names))
    return Equations(list(names), list(model.get_feature_names()), np.asarray(model.coefficients()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", nargs="+", default=["lotka-volterra:0.02", "lotka-volterra:0.05", "cubic:0.02"])
    ap.add_argument("--out", type=Path, default=Path("docs/dynamics"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    rows = []
    for run in args.runs:
        system, noise = run.split(":")
        t, x, clean = irregular_series(system, n_obs=100, noise=float(noise), seed=0)
        names = ["x", "y"][: x.shape[1]]
        base = dict(system=system, noise=float(noise))
        start = time.time()
        fit = fit_neural_ode(t, x, NeuralFitConfig())
        fit_info = dict(
            fit_s=round(time.time() - start, 1),
            fit_iterations=fit.iterations,
            fit_converged=fit.stopped_early,
            held_out=fit.best_val,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = select_from_fit(fit, Observations(t, x, tuple(names)), DiscoverOptions(ensemble=0))
            rows.append(
                dict(
                    base,
                    method="neural + selection + search on the observations (default)",
                    **fit_info,
                    degree=res.selection.degree,
                    **score(res.equations, system),
                )
            )
            reg = select_from_fit(fit, Observations(t, x, tuple(names)), DiscoverOptions(ensemble=0, refine=False))
            rows.append(
                dict(
                    base,
                    method="neural + selection (--no-refine)",
                    degree=reg.selection.degree,
                    **score(reg.equations, system),
                )
            )
            for degree, threshold in FIXED:
                if system == "cubic" and degree < 3:
                    continue
                r = select_from_fit(
                    fit,
                    Observations(t, x, tuple(names)),
                    DiscoverOptions(library=LibrarySpec(degree=degree), threshold=threshold, ensemble=0),
                )
                rows.append(
                    dict(
                        base,
                        method=f"neural + fixed (degree {degree}, threshold {threshold})",
                        **score(r.equations, system),
                    )
                )
            weak = discover_equations(t, x, names, DiscoverOptions(method="weak", ensemble=0))
            rows.append(dict(base, method="weak form + selection", **score(weak.equations, system)))
            rows.append(
                dict(
                    base,
                    method="raw finite differences (degree 3, threshold 0.05)",
                    **score(fit_sindy(t, x, names, degree=3, threshold=0.05), system),
                )
            )
            rows.append(
                dict(
                    base,
                    method="raw smoothed finite differences (degree 3, threshold 0.05)",
                    **score(smoothed_sindy(t, x, names, 3, 0.05), system),
                )
            )
        for r in rows[-(len(rows) - len([q for q in rows if q["system"] != system or q["noise"] != float(noise)])) :]:
            print(json.dumps(r), flush=True)
    (args.out / "discover_results.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
