"""The whole recipe: irregular noisy series (one or more trajectories) -> one neural ODE ->
samples where the data is -> SINDy with model selection (threshold × degree path, cross-validated,
sparsest within tolerance) and bootstrap inclusion probabilities."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from ..data.trajectories_csv import load_trajectories_csv
from .invariants import AffineInvariant, find_affine_invariants, library_columns_without
from .neural_fit import NeuralFit, NeuralFitConfig, check_observations, fit_neural_ode
from .selection import Selection, expand_selection, polynomial_terms, select_from_library, select_model
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


def check_variable_names(variables: Sequence[str]) -> None:
    bad = [v for v in variables if not v or any(ch.isspace() or ch == "^" for ch in v)]
    if bad:
        raise ValueError(f"variable names {bad} would make ambiguous library terms; use names without spaces or '^'")


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
    """
    check_variable_names(variables)
    if x.dim() != 2 or x.shape[1] != len(variables):
        raise ValueError(f"need x [n, d] and d variable names; got x {tuple(x.shape)}, names {list(variables)}")
    if degree is not None and degree < 1:
        raise ValueError(f"need degree >= 1; got {degree}")
    if threshold is not None and threshold < 0:
        raise ValueError(f"need threshold >= 0; got {threshold}")
    if method not in ("neural", "weak"):
        raise ValueError(f"method must be 'neural' or 'weak'; got {method!r}")
    degrees = (degree,) if degree else (1, 2, 3)
    opts: Dict[str, Any] = dict(
        thresholds=None if threshold is None else [threshold],
        relative=threshold is None,
        ensemble=ensemble,
        seed=seed,
        greedy=threshold is None,
        exhaustive=3 if threshold is None else 0,
    )
    if method == "weak":
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
        if laws:
            keep = library_columns_without(polynomial_terms(variables, max(degrees)), [law.eliminated for law in laws])
            sizes_k = {deg: int(keep[:size].sum()) for deg, size in sizes.items()}
            sel = select_from_library(
                g_all[:, keep], b_all, [tm for tm, k in zip(terms, keep) if k], sizes_k, np.concatenate(groups), **opts
            )
            sel = expand_selection(sel, keep, terms)
        else:
            sel = select_from_library(g_all, b_all, terms, sizes, np.concatenate(groups), **opts)
        return Discovery(_equations(variables, sel, laws), None, t, x, list(variables), traj, sel, invariants=laws)
    fit = fit_neural_ode(t, x, config, trajectory=trajectory)
    return select_from_fit(
        fit, t, x, variables, n_samples, degree, threshold, trajectory, nearby, spread, ensemble, seed, invariants
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
) -> Discovery:
    """Steps after the neural fit of discover_equations (same arguments): conservation laws on the
    learned states, samples along the data (the nearby copies kept on the laws' level sets), selection.
    spread 0.05 (in data stds): the nearby copies penalise term combinations that cancel on one closed
    orbit; smaller spreads (0.02 was tried) let such dense combinations through on Lotka–Volterra.
    """
    degrees = (degree,) if degree else (1, 2, 3)
    opts: Dict[str, Any] = dict(
        thresholds=None if threshold is None else [threshold],
        relative=threshold is None,
        ensemble=ensemble,
        seed=seed,
        greedy=threshold is None,
        exhaustive=3 if threshold is None else 0,
    )
    laws = []
    if invariants:
        assert fit.states is not None and fit.t_train is not None  # a finished fit
        with torch.no_grad():
            laws = find_affine_invariants(fit.states.numpy(), fit.field(fit.t_train[0], fit.states).numpy())
    _, xs, xd, groups, _ = fit.samples(n_samples, nearby=nearby, spread=spread, seed=seed, laws=laws)
    sel = select_model(
        xs, xd, list(variables), groups, degrees=degrees, exclude=[law.eliminated for law in laws], **opts
    )
    return Discovery(_equations(variables, sel, laws), fit, t, x, list(variables), trajectory, sel, invariants=laws)


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
