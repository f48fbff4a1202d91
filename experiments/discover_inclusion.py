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

The calibration (odeflow.discover.calibration): `--map ROWS` fits the isotonic map on the
development runs among ROWS (`is_development`) and prints it; with `--report ROWS` as well, the
table is of the other (held-out) runs, stated and calibrated side by side.

Usage: OMP_NUM_THREADS=1 PYTHONPATH=src python experiments/discover_inclusion.py --out FILE.jsonl \
           [--seeds 202 --noise 0.01 --systems lotka-volterra ... --kinds additive proportional]
       python experiments/discover_inclusion.py --report FILE.jsonl
       python experiments/discover_inclusion.py --map FILE.jsonl --report FILE.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from odeflow.data.discovery_families import FAMILIES, NONPOLYNOMIAL, random_instance
from odeflow.discover.calibration import (
    InclusionCalibration,
    inclusion_points,
    is_development,
    reliability,
    reliability_rows,
)
from odeflow.discover.confidence import assess
from odeflow.discover.library import parse_library
from odeflow.discover.model_search import SearchProblem, refine_on_observations
from odeflow.discover.observation_fit import segments_of
from odeflow.discover.options import SearchOptions, SelectionOptions
from odeflow.discover.selection import select_model


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
    coef_true = inst.truth(lib.terms)
    truth = coef_true != 0
    on = found.inclusion > 0
    conf = assess(
        found.fits,
        found.fit,
        found.segments if found.segments is not None else seg,
        lib.numpy(clean.numpy()),
        keep,
        lib.terms,
        inst.variables,
        found.tolerance,
        found.stopped_at_limit,
        noise_problems=found.noise_problems if found.noise is not None else None,
        extra=found.extra,
    )
    chosen = found.fit.support
    return dict(
        system=system,
        seed=seed,
        noise=noise,
        kind=kind,
        exact=bool(np.array_equal(chosen, truth)),
        inclusion=found.inclusion[on].tolist(),
        true=truth[on].tolist(),
        chosen=chosen[on].tolist(),
        # every other term of every equation has inclusion 0: how many, and how many of them are true
        zero_terms=int((~on).sum()),
        zero_true=int((truth & ~on).sum()),
        confidence=conf.level,
        confidence_reasons=conf.reasons,
        # the chosen terms' coefficients, Gauss–Newton standard errors and true values (interval coverage)
        coef=found.fit.coefficients[chosen].tolist(),
        stderr=found.fit.stderr[chosen].tolist(),
        coef_true=coef_true[chosen].tolist(),
    )


def _ece(p: np.ndarray, ok: np.ndarray, w: np.ndarray) -> float:
    """Expected calibration error over the bins: Σ_bins (terms/total) |mean stated − fraction true|."""
    return sum(n / w.sum() * abs(mean - k / n) for _, _, n, k, mean in reliability(p, ok, w))


def report(rows: list, calibration: Optional[InclusionCalibration] = None) -> str:
    """The reliability table of the stated inclusion (terms with p > 0 and, separately, the terms at
    p = 0), and, with a calibration, the same table of the calibrated inclusion of the same terms."""
    p, ok, w = inclusion_points(rows)
    head = "| value in the bin | bagged p: terms | true | mean p | fraction true |"
    if calibration is not None:
        head += " calibrated g(p): terms | true | mean g | fraction true |"
    lines = [
        "terms with stated p > 0:",
        head,
        "|" + "---|" * (head.count("|") - 1),
        *reliability_rows(rows, calibration),
    ]
    zeros = p == 0
    lines.append(
        f"terms at p = 0: {w[zeros].sum():.0f}, of which {(w * ok)[zeros].sum():.0f} true; "
        f"ECE (p > 0) bagged {_ece(p[~zeros], ok[~zeros], w[~zeros]):.3f}"
    )
    if calibration is not None:
        q = calibration(p)
        lines.append(
            f"terms at p = 0 get {calibration(np.zeros(1))[0]:.4f}; "
            f"ECE (p > 0) calibrated {_ece(q[~zeros], ok[~zeros], w[~zeros]):.3f}"
        )
    for level in ("high", "low"):
        mine = [r for r in rows if r.get("confidence") == level]
        if mine:
            pl, okl, wl = inclusion_points(mine)
            top = pl >= 0.95
            lines.append(
                f"runs said {level} ({len(mine)}): terms stated >= 0.95: {wl[top].sum():.0f}, "
                f"true {(wl * okl)[top].sum():.0f}; stated in (0, 0.95): {wl[(pl > 0) & ~top].sum():.0f}, "
                f"true {(wl * okl)[(pl > 0) & ~top].sum():.0f}"
            )
    exact = sum(r["exact"] for r in rows)
    high = [r for r in rows if r.get("confidence") == "high"]
    lines.append(
        f"\n{len(rows)} runs, {exact} exact supports"
        + (f"; {len(high)} said high confidence, {sum(r['exact'] for r in high)} of them exact" if high else "")
    )
    return "\n".join(lines)


def fitted_map(rows: list) -> InclusionCalibration:
    """The isotonic map (odeflow.discover.calibration) fitted on the development families' rows."""
    dev = [r for r in rows if is_development(r)]
    return InclusionCalibration.fit(*inclusion_points(dev))


def _read(paths: list) -> list:
    return [json.loads(line) for path in paths for line in Path(path).read_text().splitlines() if line.strip()]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("docs/dynamics/discover_inclusion.jsonl"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[201])
    ap.add_argument("--noise", type=float, nargs="+", default=[0.05])
    ap.add_argument("--systems", nargs="+", default=[*FAMILIES, *NONPOLYNOMIAL])
    ap.add_argument("--kinds", nargs="+", default=["additive", "proportional"])
    ap.add_argument(
        "--report", type=Path, nargs="+", default=None, help="rows to tabulate (stated and, with --map, calibrated)"
    )
    ap.add_argument(
        "--map", type=Path, nargs="+", default=None, help="development rows: fit the calibration map on them"
    )
    args = ap.parse_args()
    if args.map or args.report:
        cal = fitted_map(_read(args.map)) if args.map else None
        if cal is not None:
            print(f"InclusionCalibration(x={cal.x!r}, y={cal.y!r}, counts={cal.counts!r})")
        if args.report:
            rows = _read(args.report)
            print(report([r for r in rows if not is_development(r)] if cal is not None else rows, cal))
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
                for kind in args.kinds:
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
