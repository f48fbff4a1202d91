"""Refining the regression's model on the observations (odeflow.discover.observation_fit).

Start: the support chosen by cross-validation on the field's samples (odeflow.discover.selection).
Moves, for each equation: drop one of its terms; add any allowed term (`pool`: only that many, those
that most lower the samples' in-sample residual; default every term: on the development fits the
pool of 5 found 26/30 exact models, every term 27/30, in the same time); or switch to any support
the regression scored (`alternatives`: only that many, the best cross-validated; default all: on 40
development fits, 10 of them extra SIR fits at 1% noise, the best 5 gave 35/40 exact, all 38/40).
Every move's BIC is first predicted by one Gauss–Newton step from the current fit
(`predicted_bics`); the `verify` best are fitted to the observations (Levenberg–Marquardt) and the
best fitted move is taken while it lowers BIC, up to `rounds` times. Then the sparsest fit within
`tolerance` is offered moves that replace 2 or 3 of an equation's terms by one other term
(odeflow.discover.collapse: a denser support that imitates a sparse one along the data, which no
move of one or two terms leads back from), then terms are pruned one at a
time while the model stays within `tolerance` of the lowest BIC seen, and the answer is the sparsest
fitted model within `tolerance` (10: "very strong" evidence on Kass & Raftery's 2 ln B scale, 1995;
the one-standard-error rule's idea on an information criterion). On development instances (seeds
1–3 of each family) spurious terms gained 5–8 in BIC (rk4's and the noise's structure), true small
terms 40 or more (Lorenz's −y in ẏ: 40).

The noise model (odeflow.discover.noise_model) is estimated on the starting fit and fixes every
fit's weights. When the starting model is poor its residuals overstate the noise (by 18× in sd on
a Brusselator run whose start had BIC −26 against the answer's −1,146), and the BIC comparisons are
then made under a wrong noise shape. So after the search the noise model is re-estimated on the
chosen model; when that model's residuals have a variance more than 2× off the one assumed, or a
kind fits them better by more than 10 BIC, the search runs again from the chosen model under the
re-estimated weights (`reweight` times, default once; start_bic is then the first start's
residuals scored under the final weights, without refit).

Inclusion probabilities (bagging, as ensemble SINDy but on this criterion): the observations are
resampled by time blocks (5 per trajectory) with replacement; on each resample every fitted model is
rescored by its weighted BIC (residuals kept, no refit) and the same rule picks one. A term's
inclusion is the fraction of resamples whose pick holds it (the pipeline writes it through the
calibration map of odeflow.discover.calibration). Intervals: ±1.96 Gauss–Newton standard
errors of the final fit (residuals weighted by each variable's own noise level); they assume
independent residuals and so are, if anything, narrow.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from .collapse import Collapse, collapse_moves
from .library import Library, as_library
from .noise_model import KINDS, VarianceModel, fit_variance_model, misfit, scale_drift
from .observation_fit import (
    ObservationFit,
    Segments,
    bic_of,
    fit_on_observations,
    least_squares_start,
    predicted_bics,
    rank_of,
)
from .options import DEFAULT_SEARCH, SearchOptions
from .progress import duration, progress_bar
from .selection import Selection, _gram_rss


@dataclass
class Refinement:
    start_bic: float
    bic: float
    fit: ObservationFit
    moves: List[str] = field(default_factory=list)  # taken by the greedy search; the final pick may be sparser
    evaluated: int = 0
    inclusion: np.ndarray = field(default_factory=lambda: np.zeros(0))
    fits: List[ObservationFit] = field(default_factory=list)  # every model fitted, for the confidence checks
    tolerance: float = 10.0  # the BIC tolerance of the sparsest-within rule
    stopped_at_limit: bool = False  # the greedy search used all its rounds while BIC still fell
    noise: Optional[VarianceModel] = None  # the observation-noise model the BIC used (None: constant, unfitted)
    noise_problems: List[str] = field(default_factory=list)  # where that model does not fit the chosen fit
    segments: Optional[Segments] = None  # the (weighted) segments the fits were scored on
    extra: Optional[np.ndarray] = None  # [m] Fourier and user columns (the sparsest-within rule's tie-break)


def variance_of(fit: ObservationFit, seg: Segments, kinds: Sequence[str] = KINDS) -> VarianceModel:
    """The noise model (odeflow.discover.noise_model) of a fit's residuals on the observations."""
    raw, level = fit.raw_residuals(seg)
    return fit_variance_model(raw, level, seg.scale.numpy(), kinds)


def noise_check(fit: ObservationFit, seg: Segments, used: VarianceModel, variables: Sequence[str]) -> List[str]:
    """Misfit lines of the noise model `used` on `fit`, plus a line per variable whose kind fits
    this fit worse than another kind by more than 10 BIC."""
    raw, level = fit.raw_residuals(seg)
    order = np.argsort(seg.rows.numpy(), kind="stable")  # time order within each trajectory
    out = misfit(used, raw, level, order, variables) + scale_drift(used, raw, level, variables)
    again = fit_variance_model(raw, level, seg.scale.numpy(), [k for k in KINDS])
    for i, v in enumerate(variables):
        # only strong evidence (10 on Kass & Raftery's scale): "both" and "proportional" often trade
        # places by a few units on a right model (seen on linear-oscillator runs)
        lost = again.bic[i, KINDS.index(used.kinds[i])] - again.bic[i].min()
        if again.kinds[i] != used.kinds[i] and lost > 10:
            out.append(
                f"the noise kind of {v} fits the chosen model worse than {again.kinds[i]} by {lost:.0f} BIC "
                f"(used: {used.kinds[i]})"
            )
    return out


def _noise_drift(
    fit: ObservationFit, seg: Segments, used: VarianceModel, variables: Sequence[str], kinds: Sequence[str] = KINDS
) -> List[str]:
    """Where the noise model `used` (estimated on the search's starting fit) no longer describes the
    size or the kind of `fit`'s residuals: odeflow.discover.noise_model.scale_drift, and a kind that
    fits `fit` worse than another by more than 10 BIC (as noise_check)."""
    raw, level = fit.raw_residuals(seg)
    out = scale_drift(used, raw, level, variables)
    again = fit_variance_model(raw, level, seg.scale.numpy(), list(kinds))
    for i, v in enumerate(variables):
        lost = again.bic[i, KINDS.index(used.kinds[i])] - np.nanmin(again.bic[i])
        if again.kinds[i] != used.kinds[i] and lost > 10:
            out.append(f"{v}'s noise fits {again.kinds[i]} better than {used.kinds[i]} by {lost:.0f} BIC")
    return out


def _key(support: np.ndarray) -> bytes:
    return np.asarray(support, dtype=bool).tobytes()


@dataclass(frozen=True)
class SearchProblem:
    """What the search works on. theta_lib [n, m], xdot [n, d]: the samples' library and derivatives
    (full library, m terms); library: the terms (odeflow.discover.library.Library, or exponent tuples
    of a polynomial one); keep [m]: library columns allowed (False for variables left out by a
    conservation law); seg: the observations cut into shooting segments."""

    theta_lib: np.ndarray
    xdot: np.ndarray
    library: Union[Library, Sequence[Tuple[int, ...]]]
    keep: np.ndarray
    seg: Segments
    terms: Sequence[str]
    variables: Sequence[str]


def refine_on_observations(
    sel: Selection,
    problem: SearchProblem,
    options: SearchOptions = DEFAULT_SEARCH,
    on_phase: Optional[Callable[[str], None]] = None,
) -> Refinement:
    """The search of the module docstring from `sel`'s support (odeflow.discover.options.SearchOptions).
    noise: the observation-noise kinds allowed (odeflow.discover.noise_model), chosen per variable on
    the starting fit's residuals and used as fixed weights for every fit; ("constant",): unweighted.
    pairs: moves of two terms in one equation (swap one term for another, add two) among the `pairs`
    addable terms that most lower the samples' residual (0: single-term moves only). restarts: the
    greedy search is run again from this many other starts (each equation's next-best cross-validated
    supports), so that a better support separated from the first start by a worse one is reached.
    progress: a bar counting the models fitted; on_phase: told, after the first fit, its time and the
    most the search can take (rounds × (1 + restarts) greedy rounds of `verify` fits, then pruning)."""
    o = options
    search = _Search(sel, problem, o)
    current = sel.coefficients != 0
    clock = time.perf_counter()
    best = fit_on_observations(problem.library, current, sel.coefficients, search.seg)
    if on_phase is not None:
        each = time.perf_counter() - clock
        steps = o.rounds * (1 + o.restarts)  # greedy rounds, each fitting `verify` moves and adding <= 2 terms
        most = steps * o.verify + o.restarts + 2 + (int(current.sum()) + 2 * steps) * o.verify  # + the pruning
        on_phase(
            f"search on the observations: one model fit takes {each:.1f} s; at most ~{most} fits "
            f"(~{duration(most * each)}), usually far fewer"
        )
    variance = None
    if tuple(o.noise) != ("constant",) and np.isfinite(best.bic):
        variance = variance_of(best, search.seg, o.noise)
        _, level = best.raw_residuals(search.seg)
        search.seg = search.seg.with_weights(variance.weights(level))  # every later fit is scored on these
        best = fit_on_observations(problem.library, current, best.coefficients, search.seg, best.starts)
    search.fits[_key(current)] = best
    start, start_seg = best, search.seg
    at_limit = search.greedy(current, best)
    for r in range(o.restarts):
        other = _restart_support(sel, current, r + 1, search.kept)
        if other is None or _key(other) in search.fits:
            continue
        start = search.evaluate(other, best)
        if np.isfinite(start.bic):
            search.moves.append(f"restart {r + 1} from the regression's next-best supports (BIC {start.bic:.1f})")
            at_limit = search.greedy(other, start) or at_limit
    fitted = lambda: list(search.fits.values())  # noqa: E731
    extra = as_library(problem.library).nonpolynomial()
    first = _sparsest_within(fitted(), o.tolerance, extra=extra)
    if o.collapse > 1 and np.isfinite(first.bic):
        first = search.collapse(first)
    chosen = _prune(
        first,
        search.fits,
        search.evaluate,
        o.tolerance,
        problem.library,
        search.seg,
        o.verify,
        extra,
    )
    search.bar.close()
    if variance is not None and o.reweight > 0 and np.isfinite(chosen.bic):
        drift = _noise_drift(chosen, search.seg, variance, problem.variables, o.noise)
        if drift:
            search.bar.close()
            again = refine_on_observations(
                replace(sel, coefficients=chosen.coefficients), problem, replace(o, reweight=o.reweight - 1)
            )
            again.moves = [
                *search.moves,
                f"noise model re-estimated on the chosen model ({'; '.join(drift)}): searched again from it",
                *again.moves,
            ]
            again.evaluated += len(search.fits)
            if again.segments is not None:  # the starting model, scored under the final noise model (no refit)
                raw, _ = start.raw_residuals(start_seg)
                again.start_bic = bic_of(raw * again.segments.w.detach().numpy(), int(start.support.sum()))
            return again
    inclusion = _bagged_inclusion(fitted(), search.seg.block, o.ensemble, o.seed, chosen, o.tolerance, extra)
    problems = noise_check(chosen, search.seg, variance, problem.variables) if variance is not None else []
    return Refinement(
        best.bic,
        chosen.bic,
        chosen,
        search.moves,
        len(search.fits),
        inclusion,
        fitted(),
        o.tolerance,
        at_limit,
        noise=variance,
        noise_problems=problems,
        segments=search.seg,
        extra=extra,
    )


class _Search:
    """The search's state: every model fitted so far (by support), the segments they are scored
    on, and the moves taken."""

    def __init__(self, sel: Selection, problem: SearchProblem, options: SearchOptions) -> None:
        self.sel, self.problem, self.o = sel, problem, options
        self.seg = problem.seg
        self.fits: Dict[bytes, ObservationFit] = {}
        self.moves: List[str] = []
        d = sel.coefficients.shape[0]
        self.rss_of = [_gram_rss(problem.theta_lib[:, problem.keep], problem.xdot[:, i]) for i in range(d)]
        self.kept = np.flatnonzero(problem.keep)
        self.bar = progress_bar(options.progress, "search on the observations", None, "fit")

    def evaluate(self, support: np.ndarray, base: ObservationFit) -> ObservationFit:
        """The fit of `support`, started from `base` (changed equations from the samples' least squares)."""
        key = _key(support)
        if key not in self.fits:
            pb = self.problem
            start = base.coefficients.copy()
            changed = (support != base.support).any(axis=1)
            start[changed] = least_squares_start(pb.theta_lib, pb.xdot, support, changed)[changed]
            start[~support] = 0.0
            found = fit_on_observations(pb.library, support, start, self.seg, base.starts)
            if not np.isfinite(found.bic) and np.isfinite(base.bic):
                # the samples' least squares can blow up where the field is poor: continue from the
                # current model instead (its coefficients, new terms at 0), which integrates
                cont = np.where(support, base.coefficients, 0.0)
                found = fit_on_observations(pb.library, support, cont, self.seg, base.starts)
            self.fits[key] = found
            self.bar.update(1)
        return self.fits[key]

    def collapse(self, chosen: ObservationFit) -> ObservationFit:
        """k-for-1 replacements of `chosen` (odeflow.discover.collapse): per equation and k the
        `verify` with the smallest ρ are proposed; those whose BIC predicted by one Gauss–Newton step
        (`predicted_bics`) is within 3 × `tolerance` of the lowest BIC seen are fitted, started from
        their least squares on the samples (on the imitation runs of experiments/discover_collapse.py
        the prediction was within 0.5 of the fit; on right runs every proposal is predicted hundreds
        of BIC worse, so nothing is fitted). The sparsest fit within `tolerance` of the lowest BIC
        becomes the choice, repeated while one is."""
        pb, o = self.problem, self.o
        while True:
            proposed: List[Tuple[Collapse, np.ndarray]] = []
            per_eq: Dict[Tuple[int, int], int] = {}
            for mv in collapse_moves(pb.theta_lib, chosen.coefficients, np.asarray(pb.keep, dtype=bool), o.collapse):
                full = chosen.support.copy()
                full[mv.equation] = mv.support
                group = (mv.equation, len(mv.removed))
                if per_eq.get(group, 0) >= o.verify or _key(full) in self.fits:
                    continue
                per_eq[group] = per_eq.get(group, 0) + 1
                proposed.append((mv, full))
            if not proposed:
                return chosen
            low = min(f.bic for f in self.fits.values())
            guess = predicted_bics(pb.library, chosen, [full for _, full in proposed], self.seg)
            picked: List[Tuple[Collapse, ObservationFit]] = []
            for (mv, full), g in zip(proposed, guess):
                if not g <= low + 3 * o.tolerance:  # predicted far outside the tolerance: not worth a fit
                    continue
                start = chosen.coefficients.copy()
                start[mv.equation] = mv.start
                self.fits[_key(full)] = fit_on_observations(pb.library, full, start, self.seg, chosen.starts)
                self.bar.update(1)
                picked.append((mv, self.fits[_key(full)]))
            low = min(f.bic for f in self.fits.values())
            ok = [(mv, f) for mv, f in picked if f.bic <= low + o.tolerance]
            if not ok:
                return chosen
            mv, chosen = min(ok, key=lambda p: (int(p[1].support.sum()), p[1].bic))
            gone = ", ".join(pb.terms[k] for k in mv.removed)
            self.moves.append(
                f"replace {gone} by {pb.terms[mv.added]} in d{pb.variables[mv.equation]}/dt (BIC {chosen.bic:.1f})"
            )

    def greedy(self, current: np.ndarray, best: ObservationFit) -> bool:
        """Take the best verified move while it lowers BIC; True when still improving after `rounds`."""
        o, pb = self.o, self.problem
        for _ in range(o.rounds):
            options: List[Tuple[str, np.ndarray]] = []
            for i in range(current.shape[0]):
                for name, s in _moves_of(
                    i,
                    current[i],
                    self.sel,
                    self.rss_of[i],
                    self.kept,
                    pb.terms,
                    pb.variables,
                    o.pool,
                    o.alternatives,
                    o.pairs,
                ):
                    full = current.copy()
                    full[i] = s
                    if _key(full) not in self.fits:
                        options.append((name, full))
            if not options:
                return False
            guess = predicted_bics(pb.library, best, [full for _, full in options], self.seg)
            if not np.isfinite(guess).any():  # the current model diverges: try the sparsest options
                guess = [float(full.sum()) for _, full in options]
            order = np.argsort(guess)[: o.verify]
            tried = [(self.evaluate(options[j][1], best).bic, options[j][0], options[j][1]) for j in order]
            bic, name, full = min(tried, key=lambda tr: tr[0])
            if not bic < best.bic:
                return False
            current, best = full, self.fits[_key(full)]
            self.moves.append(f"{name} (BIC {bic:.1f})")
        return True


def _restart_support(sel: Selection, current: np.ndarray, rank: int, kept: np.ndarray) -> Optional[np.ndarray]:
    """Each equation's support of cross-validated rank `rank` (0 = best) among the regression's
    candidates that differ from `current` and use allowed columns only; None without any."""
    out = current.copy()
    allowed = set(kept.tolist())
    changed = False
    for i in range(min(current.shape[0], len(sel.table))):
        ranked = [
            sup
            for sup, _, _ in sorted(sel.table[i], key=lambda c: c[2])
            if not np.array_equal(sup, current[i]) and set(np.flatnonzero(sup)) <= allowed
        ]
        if len(ranked) >= rank:
            out[i] = ranked[rank - 1]
            changed = True
    return out if changed else None


def _moves_of(
    i: int,
    sup_i: np.ndarray,
    sel: Selection,
    rss_i: Callable,
    kept: np.ndarray,
    terms: Sequence[str],
    variables: Sequence[str],
    pool: Optional[int],
    alternatives: Optional[int],
    pairs: int = 0,
) -> Iterator[Tuple[str, np.ndarray]]:
    """(description, new support of equation i): drop a term, add a term, switch support; with
    pairs > 0 also swap a term for one of the `pairs` best addable terms, or add two of them."""
    eq = f"d{variables[i]}/dt"
    for k in np.flatnonzero(sup_i).tolist():
        s = sup_i.copy()
        s[k] = False
        yield f"drop {terms[k]} from {eq}", s
    in_kept = sup_i[kept]
    adds = [j for j in range(len(kept)) if not in_kept[j]]
    if pool is not None:  # only the terms that most lower the samples' residual
        adds = sorted(adds, key=lambda j: rss_i(np.flatnonzero(in_kept).tolist() + [j]))[:pool]
    for j in adds:
        col = int(kept[j])
        s = sup_i.copy()
        s[col] = True
        yield f"add {terms[col]} to {eq}", s
    if pairs > 0 and adds:
        current = np.flatnonzero(in_kept).tolist()
        top = [int(kept[j]) for j in sorted(adds, key=lambda j: rss_i(current + [j]))[:pairs]]
        for k in np.flatnonzero(sup_i).tolist():
            for col in top:
                s = sup_i.copy()
                s[k], s[col] = False, True
                yield f"swap {terms[k]} for {terms[col]} in {eq}", s
        for a in range(len(top)):
            for b in range(a + 1, len(top)):
                s = sup_i.copy()
                s[top[a]] = s[top[b]] = True
                yield f"add {terms[top[a]]} and {terms[top[b]]} to {eq}", s
    ranked = sorted(sel.table[i], key=lambda c: c[2]) if i < len(sel.table) else []
    for sup, _, _ in ranked if alternatives is None else ranked[:alternatives]:
        if not np.array_equal(sup, sup_i) and set(np.flatnonzero(sup)) <= set(kept.tolist()):
            yield f"switch {eq} to {{{', '.join(np.asarray(terms)[sup])}}}", sup


def _prune(
    chosen: ObservationFit,
    fits: Dict[bytes, ObservationFit],
    evaluate,
    tolerance: float,
    powers,
    seg,
    verify: int,
    extra: Optional[np.ndarray] = None,
) -> ObservationFit:
    """From the chosen fit, drop terms one at a time (the `verify` single drops with the lowest
    predicted BIC fully fitted, the best taken) while the result stays within `tolerance` of the
    lowest BIC seen; then the sparsest fit within tolerance among all fitted."""
    while chosen.support.sum() > 1:
        low = min(f.bic for f in fits.values())
        drops = []
        for i, k in zip(*np.nonzero(chosen.support)):
            s = chosen.support.copy()
            s[i, k] = False
            drops.append(s)
        guess = predicted_bics(powers, chosen, drops, seg)
        trials = [evaluate(drops[j], chosen) for j in np.argsort(guess)[:verify]]
        nxt = min(trials, key=lambda f: f.bic)
        if not nxt.bic <= low + tolerance:
            break
        chosen = nxt
    return _sparsest_within(list(fits.values()), tolerance, extra=extra)


def _sparsest_within(
    fits: List[ObservationFit],
    tolerance: float,
    weights: Optional[np.ndarray] = None,
    extra: Optional[np.ndarray] = None,
):
    """The fit with the fewest terms whose BIC is within `tolerance` of the lowest (ties: fewer
    `extra` columns, i.e. Fourier and user terms, then lower BIC)."""
    scores = [f.bic if weights is None else bic_of(f.residuals, int(f.support.sum()), weights) for f in fits]
    low = min(scores)
    ok = [j for j, sc in enumerate(scores) if sc <= low + tolerance]
    return fits[min(ok, key=lambda j: (*rank_of(fits[j].support, extra), scores[j]))]


def _bagged_inclusion(
    fits: List[ObservationFit],
    block: np.ndarray,
    ensemble: int,
    seed: int,
    chosen: ObservationFit,
    tolerance: float,
    extra: Optional[np.ndarray] = None,
) -> np.ndarray:
    if ensemble <= 0:
        return chosen.support.astype(float)
    rng = np.random.default_rng(seed)
    labels = np.unique(block)
    where = {b: np.flatnonzero(block == b) for b in labels}
    counts = np.zeros(chosen.support.shape)
    for _ in range(ensemble):
        w = np.zeros(len(block))
        for b in rng.choice(labels, size=len(labels), replace=True):
            w[where[b]] += 1.0
        counts += _sparsest_within(fits, tolerance, w, extra).support
    return counts / ensemble
