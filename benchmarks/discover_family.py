"""Equation discovery on randomized families of systems it was not tuned to (issue 22).

Systems (odeflow.data.discovery_families): Lotka–Volterra, Van der Pol, damped Duffing, SIR,
Lorenz (3-D), and four families outside the ones the selection was developed on: a damped linear
oscillator (linear), a 3-species competitive Lotka–Volterra (12 interaction terms), the Brusselator
and FitzHugh–Nagumo (constant terms), and the pendulum (NONPOLYNOMIAL: θ'' = −a sin θ − b θ', scored in
its `poly:1+fourier:1` library, pysindy's peers given PolynomialLibrary(1) + FourierLibrary(1); the
older peers' degree-3 polynomial libraries cannot hold it). Instance i of a system draws its parameters, initial state and horizon from fixed
ranges with seed 100 + i (seeds 1–4 were used while developing the selection rule; the benchmark
never sees them), 80–200 observations at sorted uniform random times, Gaussian noise of
noise × std per variable (--kinds additive) or noise × |value| (--kinds proportional); the same
times and noise draw at every noise level.

Methods, all scored in the degree-3 polynomial library:
  neural        odeflow discover's defaults: neural ODE fit (early stopping) -> samples along the
                data -> cross-validated model selection (no threshold or degree given) -> the model
                refined on the observations (multiple-shooting fits scored by BIC, model_search)
  sindy-fd      pysindy: SmoothedFiniteDifference on the raw samples, PolynomialLibrary(3), STLSQ(0.1)
  weak          weak-form SINDy (odeflow.discover.weak_form: 100 test functions ((t−a)(b−t))^4 over
                windows of ~16 observations, trapezoid rule on the irregular times), STLSQ(0.1)
  fd-select     smoothed finite differences + odeflow's model selection (ablation: no neural fit)
  weak-select   weak-form features + odeflow's model selection and conservation-law handling
                (`odeflow discover --method weak`: the strongest classical combination)
  ps-ensemble   pysindy 2.x ensemble SINDy: SmoothedFiniteDifference, PolynomialLibrary(3),
                EnsembleOptimizer(STLSQ(0.1), bagging, 50 models, median)
  ps-weak       pysindy 2.x weak form: WeakPDELibrary(PolynomialLibrary(3), K=100, p=4), STLSQ(0.1)
  (both pysindy peers get the series linearly interpolated onto a uniform grid of as many points:
  on the irregular times SmoothedFiniteDifference's coefficients reached ~1e3 on Lotka–Volterra,
  and WeakPDELibrary needs a grid)

Per instance: exact support (every true term nonzero, every other term zero) and coefficient
error ‖Ξ̂ − Ξ‖_F / ‖Ξ‖_F; for neural rows also the fit's iterations and whether it hit the cap
(fit_capped: still improving at the last iteration), its confidence ("high"/"low", odeflow.discover
.confidence) and, for exactly recovered rows, how many true coefficients lie inside their nominal 95%
intervals (covered / n_true; covered_gn: inside the Gauss–Newton intervals alone, before the
parametric bootstrap widens them, odeflow.discover.intervals). Rows are appended to a JSON-lines
file as they finish (re-running skips rows already there), so a long run can be stopped and
resumed; --report prints the table.

Usage:
  OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/discover_family.py --instances 20
  python benchmarks/discover_family.py --report [--goals] [--out FILE]
  # the issue's grid; --final keeps each chosen fit so that --reinterval can recompute the intervals
  OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/discover_family.py --systems ... pendulum \
      --kinds additive proportional --methods neural ps-ensemble ps-weak --out F --final FOLDER
  PYTHONPATH=src python benchmarks/discover_family.py --reinterval --final FOLDER --out F
  python benchmarks/discover_family.py --rescore --cache benchmarks/results/cache   # selection only
  # the third round ran in two phases: fits (all methods, neural without the search), then the search
  OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/discover_family.py --no-refine --cache C --out F
  OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/discover_family.py --rescore --cache C --out F
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
from odeflow.discover import NeuralFitConfig, discover_equations
from odeflow.discover.library import parse_library
from odeflow.discover.options import DiscoverOptions, SelectionOptions
from odeflow.discover.selection import select_model, stlsq
from odeflow.discover.weak_form import weak_system

SYSTEMS = [*FAMILIES, *NONPOLYNOMIAL]
METHODS = ["neural", "sindy-fd", "weak", "fd-select", "weak-select", "ps-ensemble", "ps-weak"]
KINDS = ["additive", "proportional"]
CACHE = None  # folder for the neural fits (--cache)
FINAL = None  # folder for the chosen models' fits on the observations (--final), to recompute intervals
REFINE = True  # False (--no-refine): fit and cache only; --rescore then runs the whole selection


def observe(system: str, i: int, noise: float, kind: str = "additive"):
    seed = 100 + i
    inst = random_instance(system, seed)
    n_obs = int(np.random.default_rng([seed, 7]).integers(80, 201))
    t, x, _ = inst.observe(n_obs, noise, seed, kind=kind)
    return inst, t, x


def _uniform(t: np.ndarray, x: np.ndarray):
    """The series linearly interpolated onto a uniform grid of as many points (for pysindy)."""
    tu = np.linspace(t[0], t[-1], len(t))
    return tu, np.stack([np.interp(tu, t, x[:, i]) for i in range(x.shape[1])], axis=1)


def _pysindy_library(library: str):
    """pysindy's library for an instance's `--library` ('poly': PolynomialLibrary(3); the pendulum's
    'poly:1+fourier:1': PolynomialLibrary(1) + FourierLibrary(1))."""
    import pysindy as ps

    if library == "poly":
        return ps.PolynomialLibrary(degree=3)
    if library == "poly:1+fourier:1":  # concatenated with `+` (WeakPDELibrary fails on GeneralizedLibrary)
        return ps.PolynomialLibrary(degree=1) + ps.FourierLibrary(n_frequencies=1)
    raise ValueError(f"no pysindy library for {library!r}")


def _odeflow_names(terms):
    """pysindy's 'sin(1 x)' as odeflow's 'sin(x)' (first harmonic), so both score against one truth."""
    return [t.replace("(1 ", "(") for t in terms]


def _pysindy_peer(t: np.ndarray, x: np.ndarray, names, weak: bool, library: str = "poly"):
    import pysindy as ps

    tu, xu = _uniform(t, x)
    if weak:
        lib = ps.WeakPDELibrary(function_library=_pysindy_library(library), spatiotemporal_grid=tu, K=100, p=4)
        model = ps.SINDy(feature_library=lib, optimizer=ps.STLSQ(threshold=0.1))
    else:
        opt = ps.EnsembleOptimizer(ps.STLSQ(threshold=0.1), bagging=True, n_models=50)
        model = ps.SINDy(
            feature_library=_pysindy_library(library),
            optimizer=opt,
            differentiation_method=ps.SmoothedFiniteDifference(),
        )
    model.fit(xu, t=tu, feature_names=list(names))
    return _odeflow_names(model.get_feature_names()), np.asarray(model.coefficients())


def _pysindy_fd(t: np.ndarray, x: np.ndarray, names):
    import pysindy as ps

    model = ps.SINDy(
        feature_library=ps.PolynomialLibrary(degree=3),
        optimizer=ps.STLSQ(threshold=0.1),
        differentiation_method=ps.SmoothedFiniteDifference(),
    )
    model.fit(x, t=t, feature_names=list(names))
    return list(model.get_feature_names()), np.asarray(model.coefficients())


def _fd_select(t: np.ndarray, x: np.ndarray, names):
    import pysindy as ps

    xdot = ps.SmoothedFiniteDifference()._differentiate(x, t)
    groups = np.minimum((5 * (t - t[0]) / (t[-1] - t[0])).astype(int), 4)
    keep = np.isfinite(xdot).all(axis=1)
    sel = select_model(x[keep], xdot[keep], list(names), groups[keep], options=SelectionOptions(ensemble=0))
    return sel.terms, sel.coefficients


def _weak(t: np.ndarray, x: np.ndarray, names, select: bool):
    if select:  # odeflow discover --method weak
        res = discover_equations(
            torch.as_tensor(t), torch.as_tensor(x), list(names), DiscoverOptions(method="weak", ensemble=0)
        )
        return res.equations.terms, res.equations.coefficients
    g, b, terms, centres = weak_system(t, x, names, degree=3)
    # STLSQ with pysindy's default threshold 0.1 on raw coefficients
    return terms, np.stack([stlsq(g, b[:, i], 0.1, relative=False) for i in range(b.shape[1])])


def run_one(system: str, i: int, noise: float, method: str, kind: str = "additive") -> dict:
    inst, t, x = observe(system, i, noise, kind)
    names = list(inst.variables)
    interval = gn = None
    row = dict(
        system=system,
        instance=i,
        noise=noise,
        kind=kind,
        method=method,
        n_obs=int(t.shape[0]),
        params={k: round(v, 4) for k, v in inst.params.items()},
    )
    start = time.time()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if method == "neural":
                opts = DiscoverOptions(ensemble=0, refine=REFINE, library=parse_library(inst.library))
                res = discover_equations(t, x, names, opts, NeuralFitConfig())
                terms, coef = res.equations.terms, res.equations.coefficients
                cfg = NeuralFitConfig()
                row.update(
                    fit_iterations=res.fit.iterations,
                    fit_converged=res.fit.stopped_early,
                    fit_capped=res.fit.iterations >= cfg.iterations and not res.fit.stopped_early,
                    fit_val=res.fit.best_val,
                )
                row.update(_neural_details(res, names))
                interval = (res.equations.lower, res.equations.upper)
                gn = _gauss_newton(res)
                if FINAL is not None and res.refinement is not None:
                    _save_final(res, FINAL / f"{_key(system, i, noise, kind)}.pt")
                if CACHE is not None:  # the fit, to rescore a later selection rule without refitting
                    CACHE.mkdir(parents=True, exist_ok=True)
                    torch.save(
                        dict(
                            field=res.fit.field.state_dict(),
                            states=res.fit.states,
                            t_train=res.fit.t_train,
                            traj=res.fit.trajectory_train,
                            x0=res.fit.x0,
                            t0=res.fit.t0,
                            t_end=res.fit.t_end,
                            substeps=res.fit.substeps,
                        ),
                        CACHE / f"{system}_{i}_{noise}{'' if kind == 'additive' else '_' + kind}.pt",
                    )
            elif method == "sindy-fd":
                terms, coef = _pysindy_fd(t.numpy(), x.numpy(), names)
            elif method in ("ps-ensemble", "ps-weak"):
                terms, coef = _pysindy_peer(t.numpy(), x.numpy(), names, method == "ps-weak", inst.library)
            elif method == "fd-select":
                terms, coef = _fd_select(t.numpy(), x.numpy(), names)
            else:
                terms, coef = _weak(t.numpy(), x.numpy(), names, select=method == "weak-select")
        truth = inst.truth(terms)
        coef = np.nan_to_num(np.asarray(coef, dtype=np.float64), nan=1e6)
        row.update(
            support_ok=bool(np.array_equal(coef != 0, truth != 0)),
            coef_err=float(np.linalg.norm(coef - truth) / np.linalg.norm(truth)),
            missed=int(np.sum((coef == 0) & (truth != 0))),
            spurious=int(np.sum((coef != 0) & (truth == 0))),
        )
        row.update(_coverage(truth, coef, interval, gn))
    except Exception as e:  # a failing baseline is a result, not a crash of the benchmark
        row.update(support_ok=False, coef_err=float("inf"), error=f"{type(e).__name__}: {e}"[:200])
    row["seconds"] = round(time.time() - start, 2)
    return row


def _key(system: str, i: int, noise: float, kind: str) -> str:
    return f"{system}_{i}_{noise}{'' if kind == 'additive' else '_' + kind}"


def _save_final(res, path: Path) -> None:
    """The chosen model's fit on the observations and the weighted segments it was scored on: what
    the intervals are computed from (--reinterval recomputes them with the current code)."""
    f, seg = res.refinement.fit, res.refinement.segments
    if seg is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = dict(
        support=torch.as_tensor(f.support),
        coefficients=torch.as_tensor(f.coefficients),
        residuals=torch.as_tensor(f.residuals),
        bic=torch.tensor(f.bic),
        stderr=torch.as_tensor(f.stderr),
        starts=f.starts,
        z0=seg.z0,
        dt=seg.dt,
        index=seg.index,
        target=seg.target,
        scale=seg.scale,
        block=torch.as_tensor(seg.block),
        substeps=torch.tensor(seg.substeps),
    )
    if seg.weight is not None:
        arrays["weight"] = seg.weight
    torch.save(arrays, path)


def load_final(path: Path):
    """(ObservationFit, Segments) saved by _save_final."""
    from odeflow.discover.observation_fit import ObservationFit, Segments

    d = torch.load(path, weights_only=True)
    fit = ObservationFit(
        d["support"].numpy(),
        d["coefficients"].numpy(),
        d["residuals"].numpy(),
        float(d["bic"]),
        d["stderr"].numpy(),
        0,
        d["starts"],
    )
    seg = Segments(
        d["z0"], d["dt"], d["index"], d["target"], d["scale"], d["block"].numpy(), int(d["substeps"]), d.get("weight")
    )
    return fit, seg


def reinterval(rows, final: Path, draws: int = 30):
    """Neural rows' coverage recomputed from their saved final fits (--final) with the current
    odeflow.discover.intervals (the support, coefficients and everything else kept)."""
    from odeflow.discover.intervals import coefficient_intervals

    out = []
    for r in rows:
        path = final / f"{_key(r['system'], r['instance'], r['noise'], r.get('kind', 'additive'))}.pt"
        if r["method"] != "neural" or not path.is_file() or not r.get("support_ok"):
            out.append(r)
            continue
        inst = random_instance(r["system"], 100 + r["instance"])
        library = parse_library(inst.library).build(tuple(inst.variables), ())
        fit, seg = load_final(path)
        start = time.time()
        iv = coefficient_intervals(library, fit, seg, draws, 0)
        truth = inst.truth(library.terms)
        keep = {k: v for k, v in r.items() if k not in ("covered", "covered_gn", "n_true")}
        gn = (fit.coefficients - 1.959963984540054 * fit.stderr, fit.coefficients + 1.959963984540054 * fit.stderr)
        r = dict(
            keep,
            reinterval_seconds=round(time.time() - start, 2),
            **_coverage(truth, fit.coefficients, (iv.lower, iv.upper), gn),
        )
        print(
            json.dumps(
                {k: r.get(k) for k in ("system", "instance", "kind", "noise", "covered", "covered_gn", "n_true")}
            ),
            flush=True,
        )
        out.append(r)
    return out


def _neural_details(res, names) -> dict:
    """The neural row's selection, confidence, noise model and search (everything but the fit)."""
    out = dict(degree=res.selection.degree, invariants=[law.text(names) for law in res.invariants or []])
    conf = getattr(res, "confidence", None)
    if conf is not None:
        out.update(confidence=conf.level, confidence_reasons=list(conf.reasons))
    if res.refinement is not None:
        if res.refinement.noise is not None:
            out.update(noise_model=res.refinement.noise.kinds)
        out.update(
            refinement=dict(bic_before=res.refinement.start_bic, bic=res.refinement.bic, moves=res.refinement.moves)
        )
    return out


def _gauss_newton(res):
    """(lower, upper) of the Gauss–Newton ±1.96 se alone (the intervals before the bootstrap widening)."""
    if res.refinement is None:
        return None
    f = res.refinement.fit
    return f.coefficients - 1.96 * f.stderr, f.coefficients + 1.96 * f.stderr


def _coverage(truth: np.ndarray, coef: np.ndarray, interval, gn) -> dict:
    """On an exactly recovered support: true coefficients inside the reported intervals (covered)
    and inside the Gauss–Newton ones alone (covered_gn), of n_true."""
    if interval is None or interval[0] is None or not np.array_equal(coef != 0, truth != 0):
        return {}
    on = truth != 0
    out = dict(
        covered=int(((interval[0][on] <= truth[on]) & (truth[on] <= interval[1][on])).sum()), n_true=int(on.sum())
    )
    if gn is not None:
        out.update(covered_gn=int(((gn[0][on] <= truth[on]) & (truth[on] <= gn[1][on])).sum()))
    return out


def load_fit(path: Path):
    """A NeuralFit rebuilt from a --cache file."""
    from odeflow.discover.neural_fit import NeuralFit, StandardizedField

    d = torch.load(path, weights_only=True)
    sd = d["field"]
    hidden = tuple(v.shape[0] for k, v in sd.items() if k.endswith("weight"))[:-1]
    fld = StandardizedField(sd["mean"], sd["std"], hidden, NeuralFitConfig().activation, sd["rate"])
    fld.load_state_dict(sd)
    return NeuralFit(
        fld, d["x0"], d["t0"], d["t_end"], [], d["states"], d["t_train"], d["traj"], substeps=d["substeps"]
    )


def rescore(rows, cache: Path):
    """Neural rows re-selected from their cached fits with the current selection code (the fit, its
    iterations and seconds are kept): a selection rule fixed on development seeds after the fits ran."""
    from odeflow.discover.pipeline import Observations, select_from_fit

    out = []
    for r in rows:
        kind = r.get("kind", "additive")
        path = cache / f"{r['system']}_{r['instance']}_{r['noise']}{'' if kind == 'additive' else '_' + kind}.pt"
        if r["method"] != "neural" or not path.is_file():
            out.append(r)
            continue
        inst, t, x = observe(r["system"], r["instance"], r["noise"], kind)
        names = list(inst.variables)
        start = time.time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = select_from_fit(load_fit(path), Observations(t, x, tuple(names)), DiscoverOptions(ensemble=0))
        selection_seconds = time.time() - start
        coef, truth = res.equations.coefficients, inst.truth(res.equations.terms)
        keep = {k: v for k, v in r.items() if k not in ("covered", "covered_gn", "n_true", "confidence_reasons")}
        r = dict(
            keep,
            support_ok=bool(np.array_equal(coef != 0, truth != 0)),
            coef_err=float(np.linalg.norm(coef - truth) / np.linalg.norm(truth)),
            missed=int(np.sum((coef == 0) & (truth != 0))),
            spurious=int(np.sum((coef != 0) & (truth == 0))),
            rescored=True,
            selection_seconds=round(selection_seconds, 2),
            **_neural_details(res, names),
            **_coverage(truth, coef, (res.equations.lower, res.equations.upper), _gauss_newton(res)),
        )
        print(json.dumps({k: r[k] for k in ("system", "instance", "noise", "support_ok", "coef_err")}), flush=True)
        out.append(r)
    return out


def report(rows, same_instances: bool = False) -> str:
    """Markdown table; same_instances: only (system, noise, instance) that every method has."""
    if same_instances:
        methods = {r["method"] for r in rows}
        have = {}
        for r in rows:
            have.setdefault((r["system"], r["noise"], r["instance"]), set()).add(r["method"])
        rows = [r for r in rows if have[(r["system"], r["noise"], r["instance"])] == methods]
    out = [
        "| system | noise | method | instances | exact support | median coef. error | worst coef. error |",
        "|---|---|---|---|---|---|---|",
    ]
    keys = sorted(
        {(r["system"], r["noise"], r["method"]) for r in rows},
        key=lambda k: (SYSTEMS.index(k[0]), k[1], METHODS.index(k[2])),
    )
    for system, noise, method in keys:
        rs = [r for r in rows if (r["system"], r["noise"], r["method"]) == (system, noise, method)]
        errs = np.array([r["coef_err"] for r in rs])
        ok = sum(r["support_ok"] for r in rs)
        out.append(
            f"| {system} | {noise:.0%} | {method} | {len(rs)} | {ok}/{len(rs)} ({ok / len(rs):.0%}) | "
            f"{np.median(errs):.1%} | {np.max(errs):.1%} |"
        )
    return "\n".join(out)


def pivot(rows, same_instances: bool = False) -> str:
    """One row per system and noise, one column per method: 'k/n exact, median / worst error'."""
    if same_instances:
        methods = {r["method"] for r in rows}
        have = {}
        for r in rows:
            have.setdefault((r["system"], r["noise"], r["instance"]), set()).add(r["method"])
        rows = [r for r in rows if have[(r["system"], r["noise"], r["instance"])] == methods]
    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    out = ["| system | noise | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for system in SYSTEMS:
        for noise in sorted({r["noise"] for r in rows}):
            cells = []
            for m in methods:
                rs = [r for r in rows if (r["system"], r["noise"], r["method"]) == (system, noise, m)]
                if not rs:
                    cells.append("—")
                    continue
                errs = np.array([r["coef_err"] for r in rs])
                ok = sum(r["support_ok"] for r in rs)
                cells.append(f"{ok}/{len(rs)}, {_pct(np.median(errs))} / {_pct(np.max(errs))}")
            if any(c != "—" for c in cells):
                out.append(f"| {system} | {noise:.0%} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def goals(rows) -> str:
    """The issue's goals, one line per (system, noise kind, noise level): odeflow's (neural) exact
    support, its runs right or flagged low-confidence, the coverage of its nominal 95% intervals over
    exactly recovered coefficients, each pysindy peer's exact support on the same instances, and the
    median seconds per run of each; then the totals."""
    peers = ("ps-ensemble", "ps-weak")
    out = [
        "| system | noise | runs | odeflow exact | right or flagged | right but flagged | interval coverage | "
        "pysindy ensemble exact | pysindy weak exact | s/run odeflow | s/run ensemble | s/run weak |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    cells = sorted(
        {(r["system"], r.get("kind", "additive"), r["noise"]) for r in rows},
        key=lambda c: (SYSTEMS.index(c[0]), c[1], c[2]),
    )

    def frac(k: int, n: int) -> str:
        return f"{k}/{n} ({k / n:.0%})" if n else "—"

    tot = dict(ok=0, n=0, flagged=0, cov=0, cov_n=0, doubted=0)
    for system, kind, noise in cells:
        here = [r for r in rows if (r["system"], r.get("kind", "additive"), r["noise"]) == (system, kind, noise)]
        ours = [r for r in here if r["method"] == "neural"]
        if not ours:
            continue
        done = {r["instance"] for r in ours}
        exact = sum(r["support_ok"] for r in ours)
        flagged = sum(r["support_ok"] or r.get("confidence") == "low" for r in ours)
        doubted = sum(r["support_ok"] and r.get("confidence") == "low" for r in ours)
        c = sum(r.get("covered", 0) for r in ours)
        n = sum(r.get("n_true", 0) for r in ours)
        cells_out = []
        times = [f"{np.median([r['seconds'] for r in ours]):.0f}"]
        for m in peers:
            rs = [r for r in here if r["method"] == m and r["instance"] in done]
            cells_out.append(frac(sum(r["support_ok"] for r in rs), len(rs)))
            times.append(f"{np.median([r['seconds'] for r in rs]):.1f}" if rs else "—")
        for k, v in (
            ("ok", exact),
            ("n", len(ours)),
            ("flagged", flagged),
            ("cov", c),
            ("cov_n", n),
            ("doubted", doubted),
        ):
            tot[k] += v
        out.append(
            f"| {system} | {kind} {noise:.0%} | {len(ours)} | {frac(exact, len(ours))} | {frac(flagged, len(ours))} | "
            f"{frac(doubted, exact)} | {frac(c, n)} | " + " | ".join(cells_out) + " | " + " | ".join(times) + " |"
        )
    if tot["n"]:
        out.append(
            f"\nall cells: exact {frac(tot['ok'], tot['n'])}; right or flagged {frac(tot['flagged'], tot['n'])}; "
            f"right answers flagged low {frac(tot['doubted'], tot['ok'])}; "
            f"interval coverage {frac(tot['cov'], tot['cov_n'])}"
        )
    return "\n".join(out)


def _pct(v: float) -> str:
    return f"{v:.1%}" if v < 10 else f"{100 * v:.0e}%"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--systems", nargs="+", default=list(FAMILIES), choices=SYSTEMS)
    ap.add_argument("--instances", type=int, default=20)
    ap.add_argument("--start", type=int, default=0, help="first instance index")
    ap.add_argument("--noises", type=float, nargs="+", default=[0.01, 0.05])
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    ap.add_argument("--kinds", nargs="+", default=["additive"], choices=KINDS, help="noise kinds")
    ap.add_argument(
        "--goals", action="store_true", help="with --report: the issue's goals per family, noise kind and level"
    )
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/discover_family.jsonl"))
    ap.add_argument("--report", action="store_true", help="print the table of the rows in --out and exit")
    ap.add_argument("--pivot", action="store_true", help="with --report: one row per system and noise")
    ap.add_argument(
        "--same-instances", action="store_true", help="with --report: only instances that every method has finished"
    )
    ap.add_argument("--cache", type=Path, default=None, help="save each neural fit here (not committed)")
    ap.add_argument(
        "--final", type=Path, default=None, help="save each neural run's chosen fit here (for --reinterval)"
    )
    ap.add_argument(
        "--reinterval",
        action="store_true",
        help="recompute the neural rows' interval coverage from the fits in --final and rewrite --out",
    )
    ap.add_argument(
        "--no-refine",
        action="store_true",
        help="neural rows: fit and cache, skip the search on the observations (run --rescore afterwards)",
    )
    ap.add_argument(
        "--rescore",
        action="store_true",
        help="re-run the selection on the neural fits saved in --cache and rewrite --out",
    )
    args = ap.parse_args()
    global CACHE, REFINE, FINAL
    CACHE, REFINE, FINAL = args.cache, not args.no_refine, args.final
    rows = (
        [json.loads(line) for line in args.out.read_text().splitlines() if line.strip()] if args.out.is_file() else []
    )
    if args.rescore:
        if args.cache is None:
            raise SystemExit("--rescore needs --cache FOLDER (the saved neural fits)")
        rows = rescore(rows, args.cache)
        args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))
        print(pivot(rows))
        return
    if args.reinterval:
        if args.final is None:
            raise SystemExit("--reinterval needs --final FOLDER (the saved chosen fits)")
        rows = reinterval(rows, args.final)
        args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return
    if args.report:
        if args.goals:
            print(goals(rows))
        else:
            print(pivot(rows, args.same_instances) if args.pivot else report(rows, args.same_instances))
        return
    torch.set_num_threads(1)
    done = {(r["system"], r["instance"], r["noise"], r["method"], r.get("kind", "additive")) for r in rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # instance-major, then noise level and kind: an interrupted run still covers every system
    for i in range(args.start, args.start + args.instances):
        for noise in args.noises:
            for kind in args.kinds:
                for system in args.systems:
                    for method in args.methods:
                        if (system, i, noise, method, kind) in done:
                            continue
                        row = run_one(system, i, noise, method, kind)
                        with args.out.open("a") as fh:
                            fh.write(json.dumps(row) + "\n")
                        keys = ("system", "instance", "kind", "noise", "method", "support_ok", "coef_err", "seconds")
                        print(json.dumps({k: row.get(k) for k in keys}), flush=True)


if __name__ == "__main__":
    main()
