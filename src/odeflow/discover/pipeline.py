"""The whole recipe: irregular noisy series (one or more trajectories) -> one neural ODE ->
samples where the data is -> SINDy with model selection (threshold × degree path, cross-validated,
sparsest within tolerance) -> the model refined on the observations (BIC of multiple-shooting fits)
with bagged inclusion probabilities."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from ..data.trajectories_csv import load_trajectories_csv
from .confidence import Confidence, assess
from .invariants import AffineInvariant, find_affine_invariants, library_columns_without
from .model_search import Refinement, refine_on_observations
from .neural_fit import NeuralFit, NeuralFitConfig, check_observations, fit_neural_ode
from .observation_fit import segments_of
from .selection import (
    Selection,
    polynomial_library,
    polynomial_terms,
    select_model,
    select_on_columns,
)
from .sindy import Equations
from .weak_form import weak_system


@dataclass
class Discovery:
    equations: Equations
    fit: Optional[NeuralFit]  # None for method "weak"
    t: Tensor
    x: Tensor
    variables: list
    trajectory: Optional[Tensor] = None
    selection: Optional[Selection] = None
    labels: Optional[list] = None
    invariants: Optional[list] = (
        None  # AffineInvariant laws found on the data (their variables left out of the library)
    )
    refinement: Optional[Refinement] = None  # the model search on the observations (model_search)
    confidence: Optional[Confidence] = None  # odeflow.discover.confidence: "high"/"low" and the reasons


UNCHECKED = (
    "the model was not fitted to the observations (method weak, --no-refine or a fixed --threshold), "
    "so none of the confidence checks ran"
)


def check_variable_names(variables: Sequence[str]) -> None:
    bad = [v for v in variables if not v or any(ch.isspace() or ch == "^" for ch in v)]
    if bad:
        raise ValueError(f"variable names {bad} would make ambiguous library terms; use names without spaces or '^'")


MAX_TERMS = 1000  # default cap on the polynomial library (terms per equation)


def library_size(n_variables: int, degree: int) -> int:
    """Monomials of degree <= `degree` in `n_variables` variables: C(n + degree, degree)."""
    return math.comb(n_variables + degree, degree)


def check_library_size(n_variables: int, degree: Optional[int], max_terms: int) -> int:
    """The largest library the search would build; ValueError (naming the flags that fix it) past ``max_terms``."""
    top = degree or 3
    size = library_size(n_variables, top)
    if size > max_terms:
        smaller = [f"--degree {k} ({library_size(n_variables, k):,} terms)" for k in range(1, top) if k >= 1]
        raise ValueError(
            f"the degree-{top} polynomial library of {n_variables} variables has {size:,} terms, over --max-terms "
            f"{max_terms:,} (the search time grows with the library); use "
            + (", ".join(smaller) + ", " if smaller else "")
            + "fewer variable columns, or raise --max-terms"
        )
    return size


def discover_equations(
    t: Tensor,
    x: Tensor,
    variables: list,
    config: Optional[NeuralFitConfig] = None,
    n_samples: int = 1000,
    degree: Optional[int] = None,
    threshold: Optional[float] = None,
    trajectory: Optional[Tensor] = None,
    nearby: int = 4,
    spread: float = 0.05,
    ensemble: int = 50,
    seed: int = 0,
    method: str = "neural",
    invariants: bool = True,
    refine: bool = True,
    max_terms: int = MAX_TERMS,
    on_phase: Optional[Callable[[str], None]] = None,
) -> Discovery:
    """Fit one neural ODE to (t, x) (rows grouped by `trajectory`), sample it along the data
    (plus `nearby` perturbed copies of each learned state), then select the SINDy model.

    degree None: degrees 1..3 compete; an int fixes the library degree. threshold None: the
    threshold path is scored by cross-validation over time windows; a number fixes pysindy's
    classic STLSQ rule |ξ| < threshold on raw coefficients (the pre-selection behaviour).
    method "weak": no neural fit; the same selection on weak-form SINDy rows (odeflow.discover.weak_form).
    invariants: look for affine conservation laws c·x = k along the data (learned states and field for
    "neural", the observations and weak derivatives for "weak"); each found law leaves one variable
    out of the library and is reported in the equations' notes (odeflow.discover.invariants).
    refine (method "neural", no fixed threshold): the regression's model is the start of a search
    among sparse models fitted to the observations by multiple shooting and scored by BIC
    (odeflow.discover.model_search); its coefficients, inclusion and ± intervals replace the regression's.
    max_terms: refuse (before any work) a library with more terms per equation. on_phase: told one
    line as each phase starts (library size, fit, sampling, selection, refinement).
    """
    check_variable_names(variables)
    if x.dim() != 2 or x.shape[1] != len(variables):
        raise ValueError(f"need x [n, d] and d variable names; got x {tuple(x.shape)}, names {list(variables)}")
    check_observations(t, x, trajectory, min_points=8 if method == "weak" else 4, names=list(variables))
    size = check_library_size(len(variables), degree, max_terms)
    say = on_phase or (lambda line: None)
    say(
        f"library: polynomials of degree <= {degree or 3} in {len(variables)} variables, {size:,} terms "
        f"per equation ({'degree ' + str(degree) if degree else 'degrees 1-3 compete'})"
    )
    if degree is not None and degree < 1:
        raise ValueError(f"need degree >= 1; got {degree}")
    if threshold is not None and threshold < 0:
        raise ValueError(f"need threshold >= 0; got {threshold}")
    if method == "weak":
        refine = False  # no learned states to start from; the weak rows are the whole method
    if method not in ("neural", "weak"):
        raise ValueError(f"method must be 'neural' or 'weak'; got {method!r}")
    degrees = (degree,) if degree else (1, 2, 3)
    opts = _selection_options(threshold, ensemble, seed)
    if method == "weak":
        say("weak-form SINDy on the observations, then the cross-validated selection")
        traj = check_observations(t, x, trajectory, min_points=8)
        gs, bs, groups = [], [], []
        for k in torch.unique(traj).tolist():
            on = traj == k
            g, b, terms, centres = weak_system(t[on].double().numpy(), x[on].double().numpy(), variables, max(degrees))
            tk = t[on].double().numpy()
            gs.append(g)
            bs.append(b)
            groups.append(k * 5 + np.minimum((5 * (centres - tk[0]) / (tk[-1] - tk[0])).astype(int), 4))
        g_all, b_all = np.concatenate(gs), np.concatenate(bs)
        # no derivative check here: the weak rows are window averages, not states
        laws = find_affine_invariants(x.double().numpy()) if invariants else []
        sizes = {deg: len(polynomial_terms(variables, deg)) for deg in degrees}
        keep = library_columns_without(polynomial_terms(variables, max(degrees)), [law.eliminated for law in laws])
        sel = select_on_columns(g_all, b_all, terms, sizes, np.concatenate(groups), keep, **opts)
        eqs = _equations(variables, sel, laws)
        low = Confidence("low", [UNCHECKED])
        eqs.notes.append(low.line())
        return Discovery(eqs, None, t, x, list(variables), traj, sel, invariants=laws, confidence=low)
    say("fitting the neural ODE to the observations")
    fit = fit_neural_ode(t, x, config, trajectory=trajectory)
    return select_from_fit(
        fit,
        t,
        x,
        variables,
        n_samples,
        degree,
        threshold,
        trajectory,
        nearby,
        spread,
        ensemble,
        seed,
        invariants,
        refine,
        on_phase,
        progress=bool(config is not None and config.progress),
    )


def select_from_fit(
    fit: NeuralFit,
    t: Tensor,
    x: Tensor,
    variables: list,
    n_samples: int = 1000,
    degree: Optional[int] = None,
    threshold: Optional[float] = None,
    trajectory: Optional[Tensor] = None,
    nearby: int = 4,
    spread: float = 0.05,
    ensemble: int = 50,
    seed: int = 0,
    invariants: bool = True,
    refine: bool = True,
    on_phase: Optional[Callable[[str], None]] = None,
    progress: bool = False,
) -> Discovery:
    """Steps after the neural fit of discover_equations (same arguments): conservation laws on the
    learned states, samples along the data (the nearby copies kept on the laws' level sets), selection.
    spread 0.05 (in data stds): the nearby copies penalise term combinations that cancel on one closed
    orbit; smaller spreads (0.02 was tried) let such dense combinations through on Lotka–Volterra.
    """
    degrees = (degree,) if degree else (1, 2, 3)
    opts = _selection_options(threshold, ensemble, seed)
    say = on_phase or (lambda line: None)
    laws = []
    say("sampling the fitted field along the data")
    if invariants:
        assert fit.states is not None and fit.t_train is not None  # a finished fit
        with torch.no_grad():
            laws = find_affine_invariants(fit.states.numpy(), fit.field(fit.t_train[0], fit.states).numpy())
    _, xs, xd, groups, _ = fit.samples(n_samples, nearby=nearby, spread=spread, seed=seed, laws=laws)
    refine = refine and threshold is None
    if refine:
        opts["ensemble"] = 0  # inclusion comes from the search on the observations
    exclude = [law.eliminated for law in laws]
    say(f"selecting the sparse model (degrees {', '.join(map(str, degrees))}, cross-validated)")
    sel = select_model(xs, xd, list(variables), groups, degrees=degrees, exclude=exclude, progress=progress, **opts)
    found = None
    conf = Confidence("low", [UNCHECKED])
    if refine:
        say("refining the model on the observations (multiple-shooting fits scored by BIC)")
        found, conf = refine_selection(
            sel, fit, t, x, trajectory, xs, xd, variables, max(degrees), exclude, ensemble, seed, progress, on_phase
        )
    eqs = _equations(variables, sel, laws)
    eqs.notes.extend(confidence_notes(conf, variables, sel.terms, found))
    return Discovery(
        eqs,
        fit,
        t,
        x,
        list(variables),
        trajectory,
        sel,
        invariants=laws,
        refinement=found,
        confidence=conf,
    )


def refine_selection(
    sel: Selection,
    fit: NeuralFit,
    t: Tensor,
    x: Tensor,
    trajectory: Optional[Tensor],
    xs: np.ndarray,
    xd: np.ndarray,
    variables: Sequence[str],
    degree: int,
    exclude: Sequence[int],
    ensemble: int,
    seed: int,
    progress: bool = False,
    on_phase: Optional[Callable[[str], None]] = None,
) -> Tuple[Refinement, Confidence]:
    """The regression's model refined on the observations (odeflow.discover.model_search); `sel`'s
    coefficients, inclusion and intervals are replaced by the search's. Also the confidence checks
    (odeflow.discover.confidence) on the search's fitted models, the library taken on the learned states."""
    assert fit.states is not None and fit.t_train is not None and fit.trajectory_train is not None
    traj = torch.zeros(t.shape[0], dtype=torch.long) if trajectory is None else trajectory
    guess = _learned_or_observed(t, x, traj, fit)
    # twice the fit's rk4 steps: rk4's own error must stay well below the noise, or a spurious term fits it
    seg = segments_of(t, x, traj, guess, substeps=2 * fit.substeps)
    powers = polynomial_terms(variables, degree)
    keep = library_columns_without(powers, list(exclude)) if exclude else np.ones(len(powers), dtype=bool)
    theta_lib, _ = polynomial_library(xs, variables, degree)
    found = refine_on_observations(
        sel,
        theta_lib,
        xd,
        powers,
        keep,
        seg,
        sel.terms,
        variables,
        ensemble=ensemble,
        seed=seed,
        progress=progress,
        on_phase=on_phase,
    )
    best = found.fit
    sel.coefficients = best.coefficients
    sel.inclusion = found.inclusion
    sel.lower = best.coefficients - 1.96 * best.stderr
    sel.upper = best.coefficients + 1.96 * best.stderr
    theta_states, _ = polynomial_library(fit.states.double().numpy(), variables, degree)
    conf = assess(
        found.fits,
        best,
        found.segments if found.segments is not None else seg,  # the weights the fits were scored with
        theta_states,
        keep,
        sel.terms,
        variables,
        found.tolerance,
        found.stopped_at_limit,
        noise_problems=found.noise_problems if found.noise is not None else None,
    )
    return found, conf


def confidence_notes(
    conf: Confidence, variables: Sequence[str], terms: Sequence[str], found: Optional[Refinement]
) -> List[str]:
    """The '# ' lines of equations.txt: the confidence line and, when it is low, the chosen model's
    BIC and the best fitted models by BIC, one line each (equations joined by '; ')."""
    out = [conf.line()]
    if conf.level == "low" and found is not None and conf.best:
        out.append(f"chosen model: BIC {found.bic:.1f}")
        for rank, (coef, bic) in enumerate(conf.best, 1):
            lines = Equations(list(variables), list(terms), coef).lines(intervals=False)
            out.append(f"best {rank} by BIC ({bic:.1f}): " + "; ".join(lines))
    return out


def _selection_options(threshold: Optional[float], ensemble: int, seed: int) -> Dict[str, Any]:
    """select_model's rule: the cross-validated path by default, pysindy's fixed STLSQ threshold on
    raw coefficients when one is given (no greedy paths, no best subsets)."""
    return dict(
        thresholds=None if threshold is None else [threshold],
        relative=threshold is None,
        ensemble=ensemble,
        seed=seed,
        greedy=threshold is None,
        exhaustive=3 if threshold is None else 0,
    )


def _learned_or_observed(t: Tensor, x: Tensor, traj: Tensor, fit: NeuralFit) -> Tensor:
    """Per observation row: the neural fit's learned state where it has one (training rows), else the
    observation (rows held out for the fit's early stopping)."""
    assert fit.states is not None and fit.t_train is not None and fit.trajectory_train is not None
    out = x.to(torch.float64).clone()
    t64 = t.to(torch.float64)
    for k in torch.unique(traj).tolist():
        rows = (traj == k).nonzero().flatten()
        mine = (fit.trajectory_train == k).nonzero().flatten()
        pos = torch.searchsorted(t64[rows], fit.t_train[mine].to(torch.float64))
        ok = pos < len(rows)
        hit = ok.clone()
        hit[ok] = t64[rows[pos[ok]]] == fit.t_train[mine][ok]
        out[rows[pos[hit]]] = fit.states[mine][hit].to(torch.float64)
    return out


def _equations(variables: Sequence[str], sel: Selection, laws: Sequence[AffineInvariant]) -> Equations:
    return Equations(
        list(variables),
        sel.terms,
        sel.coefficients,
        sel.inclusion,
        sel.lower,
        sel.upper,
        notes=[law.text(list(variables)) for law in laws],
    )


def discover_from_csv(
    path: Union[str, Path], time_column: Optional[str] = None, trajectory_column: str = "trajectory", **kwargs
) -> Discovery:
    """As discover_equations, reading a CSV: time column first (or ``time_column``), one column per
    variable, and optionally a ``trajectory`` column (long form: all trajectories fit one field)."""
    t, x, traj, names, labels = load_trajectories_csv(path, time_column, trajectory_column)
    result = discover_equations(t, x, names, trajectory=traj, **kwargs)
    result.labels = labels
    return result
