"""`odeflow discover --data series.csv --out RUN`: neural ODE on irregular noisy data -> samples
where the data is -> SINDy with model selection, refined on the observations (seed 002). Writes equations.txt (with
± intervals), coefficients.csv (one row per equation, one column per library term named
from the CSV's variable names), inclusion.csv (each term's bagged inclusion, calibrated: odeflow.discover.calibration),
fit.png and summary.json. A `trajectory` column makes the CSV long form: all trajectories fit one field."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "discover", help="recover equations from a time series (neural ODE + SINDy with model selection)"
    )
    p.add_argument(
        "--data",
        type=Path,
        required=True,
        help="CSV with a header: a time column first, then one column per variable; an optional "
        "'trajectory' column holds several trajectories (long form)",
    )
    p.add_argument("--out", type=Path, required=True, help="run folder (a new or empty folder)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run folder (default: refuse it)")
    p.add_argument("--time-column", default=None, help="name of the time column (default: the first column)")
    p.add_argument("--trajectory-column", default="trajectory", help="name of the trajectory column, if any")
    p.add_argument(
        "--iterations",
        type=int,
        default=2000,
        help="at most this many fit iterations (stops earlier when the held-out error stops improving)",
    )
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--hidden", type=int, nargs="+", default=[32, 32])
    p.add_argument("--window", type=int, default=4, help="observation intervals per shooting window")
    p.add_argument("--validation", type=float, default=0.15, help="fraction of observations held out for stopping")
    p.add_argument(
        "--patience",
        type=int,
        default=4,
        help="validation checks without improvement before the rate is cut (x0.3; the fit stops below 1e-4)",
    )
    p.add_argument("--samples", type=int, default=1000, help="samples of the fitted field passed to SINDy")
    p.add_argument("--nearby", type=int, default=4, help="perturbed copies of each learned state also sampled")
    p.add_argument("--spread", type=float, default=0.05, help="std of those perturbations, in data stds")
    p.add_argument("--degree", type=int, default=None, help="polynomial library degree (default: 1-3 compete)")
    p.add_argument(
        "--library",
        default="poly",
        help="candidate terms: 'poly' (polynomials; --degree or degrees 1-3 compete), 'poly:D', 'fourier:n' "
        "(sin(k v), cos(k v) for every variable v, k = 1..n), joined by '+', e.g. 'poly:2+fourier:1' "
        "(default: poly)",
    )
    p.add_argument(
        "--inputs",
        default=None,
        help="comma-separated CSV columns that are control inputs (SINDYc): in the library, not predicted, "
        "linear in time between observations",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="fixed STLSQ threshold on raw coefficients (default: chosen by cross-validation)",
    )
    p.add_argument(
        "--max-terms",
        type=int,
        default=1000,
        help="refuse a library with more terms per equation (30 variables, polynomials of degree 3: 5,456)",
    )
    p.add_argument("--ensemble", type=int, default=50, help="bootstrap resamples for inclusion probabilities")
    p.add_argument(
        "--bootstrap",
        type=int,
        default=30,
        help="parametric-bootstrap refits of the chosen model that widen the ± intervals where Gauss-Newton's are "
        "too narrow (0: Gauss-Newton intervals only; docs/dynamics.md)",
    )
    p.add_argument(
        "--no-refine",
        action="store_true",
        help="keep the cross-validated model of the field's samples: skip refitting candidate models to the "
        "observations and choosing among them by BIC (default: refine; only with --method neural)",
    )
    p.add_argument(
        "--method",
        choices=["neural", "weak"],
        default="neural",
        help="neural: neural ODE fit, then SINDy on its samples (seed 002's recipe); weak: weak-form "
        "SINDy on the raw data with the same model selection (no neural fit)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--raw",
        action="store_true",
        help="also run pysindy directly on the raw data (raw_equations.txt; needs pysindy)",
    )
    p.set_defaults(run=run)


def _phase(start: float):
    def say(line: str) -> None:
        print(f"[{time.time() - start:6.1f} s] {line}", flush=True)

    return say


def check_arguments(args: argparse.Namespace) -> None:
    """Every setting and the run folder, before any work (ValueError naming the option and the fix)."""
    from ..training.run_folder import check_run_folder

    for flag, value, low in (
        ("--iterations", args.iterations, 1),
        ("--window", args.window, 1),
        ("--patience", args.patience, 1),
        ("--samples", args.samples, 1),
        ("--nearby", args.nearby, 0),
        ("--ensemble", args.ensemble, 0),
        ("--max-terms", args.max_terms, 1),
    ):
        if value < low:
            raise ValueError(f"{flag} must be an integer >= {low}; got {value}")
    if any(h < 1 for h in args.hidden):
        raise ValueError(f"--hidden sizes must be positive integers; got {args.hidden}")
    if not 0 < args.validation < 1:
        raise ValueError(f"--validation is a fraction of the observations in (0, 1); got {args.validation}")
    if not (args.lr > 0 and args.spread >= 0):
        raise ValueError(f"--lr must be > 0 and --spread >= 0; got {args.lr} and {args.spread}")
    if args.degree is not None and args.degree < 1:
        raise ValueError(f"--degree must be >= 1; got {args.degree}")
    if args.threshold is not None and not args.threshold >= 0:
        raise ValueError(f"--threshold must be >= 0; got {args.threshold}")
    from ..discover.library import parse_library

    parse_library(args.library, args.degree)
    if args.inputs is not None and not all(c.strip() for c in args.inputs.split(",")):
        raise ValueError(f"--inputs takes comma-separated column names such as 'u' or 'u1,u2'; got {args.inputs!r}")
    if args.raw:
        try:
            import pysindy  # noqa: F401
        except ImportError:
            raise ImportError("--raw needs pysindy: pip install pysindy (or run without --raw)") from None
    check_run_folder(args.out, overwrite=args.overwrite, resumable=False)


def confidence_summary(result) -> dict:
    """summary.json's "confidence", "confidence_reasons" and (low confidence) "best_models": the
    best fitted models by BIC, each {"bic", "equations"}, and "chosen_bic"."""
    from ..discover import Equations

    conf = result.confidence
    if conf is None:
        return {}
    out: dict = dict(confidence=conf.level, confidence_reasons=list(conf.reasons))
    out["condition_numbers"] = {f"d{v}/dt": c for v, c in zip(result.variables, conf.condition)}
    if conf.level == "low" and result.refinement is not None:
        out["chosen_bic"] = result.refinement.bic
        out["best_models"] = [
            dict(
                bic=bic,
                equations=Equations(list(result.variables), list(result.equations.terms), coef).lines(intervals=False),
            )
            for coef, bic in conf.best
        ]
    return out


def options_of(args: argparse.Namespace):
    """(DiscoverOptions, NeuralFitConfig) from the command line."""
    from ..discover import NeuralFitConfig
    from ..discover.library import parse_library
    from ..discover.options import DiscoverOptions

    cfg = NeuralFitConfig(
        hidden=tuple(args.hidden),
        iterations=args.iterations,
        lr=args.lr,
        window=args.window,
        validation=args.validation,
        patience=args.patience,
        seed=args.seed,
        progress=not args.quiet,
    )
    opts = DiscoverOptions(
        library=parse_library(args.library, args.degree),
        threshold=args.threshold,
        n_samples=args.samples,
        nearby=args.nearby,
        spread=args.spread,
        ensemble=args.ensemble,
        bootstrap=args.bootstrap,
        seed=args.seed,
        method=args.method,
        refine=not args.no_refine,
        max_terms=args.max_terms,
        progress=not args.quiet,
    )
    return opts, cfg


def summary_of(args: argparse.Namespace, result, seconds: float) -> dict:
    """summary.json: the data, the fit, the selection, the search, the equations and the confidence."""
    fit, sel, ref = result.fit, result.selection, result.refinement
    fit_info = None
    if fit is not None:
        fit_info = dict(
            train_loss=fit.final_loss,
            validation_loss=fit.best_val,
            best_iteration=fit.best_iteration,
            iterations=fit.iterations,
            converged=fit.stopped_early,
            substeps=fit.substeps,
        )
    return dict(
        data=str(args.data),
        variables=result.variables,
        inputs=list(result.input_names),
        library=result.equations.terms,
        observations=int(result.t.shape[0]),
        trajectories=len(result.labels or [None]),
        method=args.method,
        fit=fit_info,
        final_loss=None if fit is None else fit.final_loss,
        selection=dict(
            degree=sel.degree,
            threshold=sel.threshold,
            cv_error=sel.score,
            best_cv_error=sel.best_score,
            candidates=sel.candidates,
        ),
        refinement=None
        if ref is None
        else dict(
            bic_before=ref.start_bic,
            bic=ref.bic,
            moves=ref.moves,
            models_fitted=ref.evaluated,
            terms=int(ref.fit.support.sum()),
            # inclusion.csv holds these bagged frequencies calibrated (odeflow.discover.calibration)
            inclusion_bagged=ref.inclusion.tolist(),
        ),
        seconds=round(seconds, 1),
        equations=result.equations.lines(),
        **confidence_summary(result),
        invariants=[
            dict(
                text=law.text(result.variables),
                coefficients=law.coefficients.tolist(),
                value=law.value,
                left_out=result.variables[law.eliminated],
                spread=law.spread,
            )
            for law in result.invariants or []
        ],
        config=dict(vars(args), data=str(args.data), out=str(args.out), run=None),
    )


def raw_equations(args: argparse.Namespace, result) -> list:
    """--raw: pysindy directly on one trajectory's raw data."""
    from ..discover import fit_sindy

    if result.labels is not None and len(result.labels) > 1:
        raise ValueError("--raw runs SINDy on one trajectory's raw data; the CSV holds several")
    if result.input_names:
        raise ValueError("--raw runs pysindy without control inputs; drop --raw or --inputs")
    threshold = 0.05 if args.threshold is None else args.threshold
    raw = fit_sindy(result.t, result.x, result.variables, degree=args.degree or 3, threshold=threshold)
    return raw.lines()


def run(args: argparse.Namespace) -> int:
    from ..discover import discover_from_csv
    from ..discover.figures import plot_fit
    from ..training.run_folder import clear_run_folder

    check_arguments(args)
    opts, cfg = options_of(args)
    inputs = tuple(c.strip() for c in args.inputs.split(",")) if args.inputs else ()
    start = time.time()
    result = discover_from_csv(
        args.data,
        time_column=args.time_column,
        trajectory_column=args.trajectory_column,
        inputs=inputs,
        options=opts,
        config=cfg,
        on_phase=None if args.quiet else _phase(start),
    )
    seconds = time.time() - start
    out = args.out
    if args.overwrite:
        clear_run_folder(out)  # only now: a failed search leaves the earlier run in place
    result.equations.write(out)
    fit = result.fit
    assert result.selection is not None  # discover always selects a model
    if fit is not None:
        plot_fit(result.t, result.x, fit, result.variables, out / "fit.png", result.trajectory)
    summary = summary_of(args, result, seconds)
    if args.raw:
        summary["raw_equations"] = raw_equations(args, result)
        (out / "raw_equations.txt").write_text("\n".join(summary["raw_equations"]) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print("\n".join(result.equations.lines() + [f"# {note}" for note in result.equations.notes]))
    files = "equations.txt, coefficients.csv, inclusion.csv" + (", fit.png" if fit is not None else "")
    if fit is None:
        print(f"weak-form SINDy {seconds:.1f} s; {files} in {out}")
    else:
        state = "converged" if fit.stopped_early else "hit --iterations"
        print(
            f"neural ODE fit {fit.iterations} iterations ({state}), loss {fit.final_loss:.3g}, held-out "
            f"{fit.best_val:.3g}; {seconds:.1f} s in all; {files} in {out}"
        )
    return 0
