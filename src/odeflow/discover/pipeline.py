"""The whole recipe: irregular noisy series (one or more trajectories, optionally with control
inputs) -> one neural ODE -> samples where the data is -> SINDy with model selection (threshold ×
degree path, cross-validated, sparsest within tolerance) -> the model refined on the observations
(BIC of multiple-shooting fits) with bagged inclusion probabilities. Or, method "weak": weak-form
SINDy rows on the observations and the same selection (`discover_weak`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from ..data.trajectories_csv import load_trajectories_csv
from .calibration import INCLUSION_MAP
from .confidence import Confidence, assess
from .inputs import InputSignal
from .intervals import coefficient_intervals
from .invariants import AffineInvariant, find_affine_invariants
from .library import Library, LibrarySpec
from .model_search import Refinement, SearchProblem, refine_on_observations
from .neural_fit import NeuralFit, NeuralFitConfig, check_observations, fit_neural_ode
from .observation_fit import segments_of
from .options import DiscoverOptions
from .selection import Selection, select_model, select_on_columns
from .sindy import Equations
from .weak_form import weak_system

Say = Callable[[str], None]


@dataclass(frozen=True)
class Observations:
    """t [n], x [n, d] with variable names; trajectory ids [n] (None: one trajectory); control
    inputs u [n, p] with their names (SINDYc: in the library, never predicted)."""

    t: Tensor
    x: Tensor
    variables: Tuple[str, ...]
    trajectory: Optional[Tensor] = None
    inputs: Optional[Tensor] = None
    input_names: Tuple[str, ...] = ()

    @property
    def traj(self) -> Tensor:
        return torch.zeros(self.t.shape[0], dtype=torch.long) if self.trajectory is None else self.trajectory

    def signal(self) -> Optional[InputSignal]:
        if self.inputs is None:
            return None
        return InputSignal(self.t.to(torch.float64), self.inputs, self.traj, self.input_names)


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
    input_names: Tuple[str, ...] = ()  # control input columns (in the library, not predicted)


UNCHECKED = (
    "the model was not fitted to the observations (method weak, --no-refine or a fixed --threshold), "
    "so none of the confidence checks ran"
)


def check_variable_names(variables: Sequence[str]) -> None:
    bad = [v for v in variables if not v or any(ch.isspace() or ch == "^" for ch in v)]
    if bad:
        raise ValueError(f"variable names {bad} would make ambiguous library terms; use names without spaces or '^'")


def library_size(n_variables: int, degree: int) -> int:
    """Monomials of degree <= `degree` in `n_variables` variables: C(n + degree, degree)."""
    return LibrarySpec(degree=degree).size(n_variables)


def check_library_size(
    n_variables: int, degree: Optional[int], max_terms: int, spec: Optional[LibrarySpec] = None
) -> int:
    """The largest library the search would build (`spec`, default the polynomials of `degree`) in
    `n_variables` library variables (states and inputs); ValueError naming the flags that fix it
    past ``max_terms``."""
    spec = spec or LibrarySpec(degree=degree)
    size = spec.size(n_variables)
    if size <= max_terms:
        return size
    fixes = []
    if spec.polynomial:
        top = max(spec.degrees)
        fixes += [f"--degree {k} ({replace(spec, degree=k).size(n_variables):,} terms)" for k in range(1, top)]
    if spec.fourier:
        fixes.append(
            f"a lower Fourier order in --library ({replace(spec, fourier=spec.fourier - 1).size(n_variables):,} "
            f"terms with fourier:{spec.fourier - 1})"
            if spec.fourier > 1
            else "--library without fourier"
        )
    what = spec.describe(n_variables).rsplit(",", 1)[0]
    raise ValueError(
        f"the library ({what}) has {size:,} terms, over --max-terms {max_terms:,} (the search time grows "
        "with the library); use "
        + (", ".join(fixes) + ", " if fixes else "")
        + "fewer variable or input columns, or raise --max-terms"
    )


def discover_equations(
    t: Tensor,
    x: Tensor,
    variables: Sequence[str],
    options: Optional[DiscoverOptions] = None,
    config: Optional[NeuralFitConfig] = None,
    trajectory: Optional[Tensor] = None,
    inputs: Optional[Tensor] = None,
    input_names: Sequence[str] = (),
    on_phase: Optional[Say] = None,
) -> Discovery:
    """Fit one neural ODE to (t, x) (rows grouped by `trajectory`; inputs [n, p]: control inputs
    named `input_names`, odeflow.discover.inputs), sample it along the data, then select the SINDy
    model and refine it on the observations; everything set by `options`
    (odeflow.discover.options.DiscoverOptions; library: odeflow.discover.library). on_phase: told
    one line as each phase starts (library size, fit, sampling, selection, refinement).
    """
    opts = options or DiscoverOptions()
    obs = _observations(t, x, variables, trajectory, inputs, input_names, opts)
    library = opts.library.build(obs.variables, obs.input_names)
    size = check_library_size(len(library.variables) + len(library.inputs), None, opts.max_terms, opts.library)
    say = on_phase or (lambda line: None)
    say(f"library: {opts.library.describe(len(library.variables) + len(library.inputs))} per equation")
    assert size == len(library)
    if opts.method == "weak":
        return discover_weak(obs, opts, library, say)
    say("fitting the neural ODE to the observations")
    fit = fit_neural_ode(obs.t, obs.x, config, trajectory=obs.trajectory, inputs=obs.signal())
    return select_from_fit(fit, obs, opts, library, on_phase)


def _observations(t, x, variables, trajectory, inputs, input_names, opts: DiscoverOptions) -> Observations:
    check_variable_names(variables)
    if x.dim() != 2 or x.shape[1] != len(variables):
        raise ValueError(f"need x [n, d] and d variable names; got x {tuple(x.shape)}, names {list(variables)}")
    traj = check_observations(t, x, trajectory, min_points=8 if opts.method == "weak" else 4, names=list(variables))
    u = None
    if inputs is not None:
        u = torch.as_tensor(inputs, dtype=torch.float64)
        if u.dim() != 2 or u.shape[0] != x.shape[0] or u.shape[1] != len(input_names):
            raise ValueError(
                f"need inputs [n, p] with p input names; got {tuple(u.shape)} for {x.shape[0]} rows and "
                f"names {list(input_names)}"
            )
    elif input_names:
        raise ValueError(f"input names {list(input_names)} given without input values")
    return Observations(t, x, tuple(variables), traj if trajectory is not None else None, u, tuple(input_names))


def discover_weak(obs: Observations, options: DiscoverOptions, library: Library, say: Say) -> Discovery:
    """Weak-form SINDy (odeflow.discover.weak_form) on the observations of every trajectory, the
    conservation laws found on the observations, then the cross-validated selection; no neural fit
    and no search on the observations (confidence low: nothing was checked)."""
    say("weak-form SINDy on the observations, then the cross-validated selection")
    traj = obs.traj
    u_all = None if obs.inputs is None else obs.inputs.numpy()
    gs, bs, groups = [], [], []
    for k in torch.unique(traj).tolist():
        on = (traj == k).numpy()
        tk = obs.t[on].double().numpy()
        u_k = None if u_all is None else u_all[on]
        g, b, _, centres = weak_system(tk, obs.x[on].double().numpy(), obs.variables, library=library, u=u_k)
        gs.append(g)
        bs.append(b)
        groups.append(k * 5 + np.minimum((5 * (centres - tk[0]) / (tk[-1] - tk[0])).astype(int), 4))
    # no derivative check here: the weak rows are window averages, not states
    laws = find_affine_invariants(obs.x.double().numpy()) if options.invariants else []
    keep = library.columns_without([law.eliminated for law in laws])
    sel = select_on_columns(
        np.concatenate(gs),
        np.concatenate(bs),
        library.terms,
        library.levels(),
        np.concatenate(groups),
        keep,
        options.selection(),
    )
    eqs = _equations(obs.variables, sel, laws)
    low = Confidence("low", [UNCHECKED])
    eqs.notes.append(low.line())
    return Discovery(
        eqs,
        None,
        obs.t,
        obs.x,
        list(obs.variables),
        traj,
        sel,
        invariants=laws,
        confidence=low,
        input_names=obs.input_names,
    )


def select_from_fit(
    fit: NeuralFit,
    obs: Observations,
    options: Optional[DiscoverOptions] = None,
    library: Optional[Library] = None,
    on_phase: Optional[Say] = None,
) -> Discovery:
    """Steps after the neural fit of discover_equations: conservation laws on the learned states,
    samples along the data (the nearby copies kept on the laws' level sets), selection, and the
    search on the observations. spread 0.05 (in data stds): the nearby copies penalise term
    combinations that cancel on one closed orbit; smaller spreads (0.02 was tried) let such dense
    combinations through on Lotka–Volterra.
    """
    opts = options or DiscoverOptions()
    library = library or opts.library.build(obs.variables, obs.input_names)
    say = on_phase or (lambda line: None)
    assert fit.states is not None and fit.t_train is not None and fit.trajectory_train is not None
    laws: List[AffineInvariant] = []
    say("sampling the fitted field along the data")
    if opts.invariants:
        with torch.no_grad():
            rates = fit.field_at(fit.t_train, fit.states, fit.trajectory_train)
        laws = find_affine_invariants(fit.states.numpy(), rates.numpy())
    ts, xs, xd, groups, tr = fit.samples(
        opts.n_samples, nearby=opts.nearby, spread=opts.spread, seed=opts.seed, laws=laws
    )
    us = None if fit.inputs is None else fit.inputs.at(torch.as_tensor(ts), torch.as_tensor(tr)).numpy()
    exclude = [law.eliminated for law in laws]
    degrees = opts.degrees
    levels = f"degrees {', '.join(map(str, degrees))}, " if opts.library.polynomial else ""
    say(f"selecting the sparse model ({levels}cross-validated)")
    sel = select_model(xs, xd, list(obs.variables), groups, degrees, exclude, opts.selection(), library, us)
    found = None
    conf = Confidence("low", [UNCHECKED])
    if opts.refines:
        say("refining the model on the observations (multiple-shooting fits scored by BIC)")
        problem = _search_problem(fit, obs, library, library.numpy(xs, us), xd, exclude)
        sel, found, conf = refine_selection(sel, fit, problem, opts, on_phase)
    eqs = _equations(obs.variables, sel, laws)
    eqs.notes.extend(confidence_notes(conf, obs.variables, sel.terms, found))
    return Discovery(
        eqs,
        fit,
        obs.t,
        obs.x,
        list(obs.variables),
        obs.trajectory,
        sel,
        invariants=laws,
        refinement=found,
        confidence=conf,
        input_names=obs.input_names,
    )


def _search_problem(
    fit: NeuralFit, obs: Observations, library: Library, theta: np.ndarray, xd: np.ndarray, exclude: Sequence[int]
) -> SearchProblem:
    """The observations cut into shooting segments started from the learned states, with the
    samples' library for the moves' least-squares starts."""
    traj = obs.traj
    guess = _learned_or_observed(obs.t, obs.x, traj, fit)
    # twice the fit's rk4 steps: rk4's own error must stay well below the noise, or a spurious term fits it
    seg = segments_of(obs.t, obs.x, traj, guess, substeps=2 * fit.substeps, signal=fit.inputs)
    keep = library.columns_without(exclude)
    return SearchProblem(theta, xd, library, keep, seg, library.terms, list(obs.variables))


def refine_selection(
    sel: Selection,
    fit: NeuralFit,
    problem: SearchProblem,
    options: DiscoverOptions,
    on_phase: Optional[Say] = None,
) -> Tuple[Selection, Refinement, Confidence]:
    """The regression's model refined on the observations (odeflow.discover.model_search): a new
    Selection with the search's coefficients, its bagged inclusion calibrated by the isotonic map
    odeflow.discover.calibration.INCLUSION_MAP (the raw bagging stays in the Refinement; no map
    without bagging, ensemble 0), and ±1.96 Gauss–Newton standard-error intervals widened by a
    parametric bootstrap of `options.bootstrap` refits (odeflow.discover.intervals); the search; and the confidence checks (odeflow.discover.confidence) on the search's fitted models,
    the library taken on the learned states."""
    assert fit.states is not None and fit.t_train is not None and fit.trajectory_train is not None
    search = options.search_options()
    found = refine_on_observations(sel, problem, search, on_phase)
    best = found.fit
    scored = found.segments if found.segments is not None else problem.seg  # the weights the fits were scored with
    iv = coefficient_intervals(problem.library, best, scored, options.bootstrap, options.seed)
    refined = replace(
        sel,
        coefficients=best.coefficients,
        inclusion=INCLUSION_MAP(found.inclusion) if search.ensemble > 0 else found.inclusion,
        lower=iv.lower,
        upper=iv.upper,
    )
    library = problem.library
    assert isinstance(library, Library)
    u_states = None if fit.inputs is None else fit.inputs.at(fit.t_train, fit.trajectory_train).numpy()
    theta_states = library.numpy(fit.states.double().numpy(), u_states)
    conf = assess(
        found.fits,
        best,
        scored,
        theta_states,
        problem.keep,
        refined.terms,
        problem.variables,
        found.tolerance,
        found.stopped_at_limit,
        noise_problems=found.noise_problems if found.noise is not None else None,
        extra=found.extra,
        intervals=(iv.lower, iv.upper),
    )
    return refined, found, conf


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
    path: Union[str, Path],
    time_column: Optional[str] = None,
    trajectory_column: str = "trajectory",
    inputs: Sequence[str] = (),
    options: Optional[DiscoverOptions] = None,
    config: Optional[NeuralFitConfig] = None,
    on_phase: Optional[Say] = None,
) -> Discovery:
    """As discover_equations, reading a CSV: time column first (or ``time_column``), one column per
    variable, and optionally a ``trajectory`` column (long form: all trajectories fit one field).
    inputs: names of columns that are control inputs (in the library, not predicted)."""
    t, x, traj, names, labels = load_trajectories_csv(path, time_column, trajectory_column)
    missing = [c for c in inputs if c not in names]
    if missing:
        raise ValueError(f"{path}: no input column(s) {missing}; the variable columns are {names} (see --inputs)")
    if len(set(inputs)) != len(inputs) or len(inputs) >= len(names):
        raise ValueError(f"--inputs must name distinct columns and leave at least one variable; got {list(inputs)}")
    state = [j for j, n in enumerate(names) if n not in inputs]
    u = x[:, [names.index(c) for c in inputs]] if inputs else None
    result = discover_equations(
        t, x[:, state], [names[j] for j in state], options, config, traj, u, tuple(inputs), on_phase
    )
    result.labels = labels
    return result
