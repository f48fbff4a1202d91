import numpy as np
import pytest
import torch

from odeflow.discover.confidence import (
    assess,
    collinear_terms,
    competing_supports,
    heteroscedasticity_p,
    lag_one_z,
    weak_terms,
)
from odeflow.discover.observation_fit import ObservationFit, segments_of


def _fit(support, bic, converged=True, n=40, seed=0, size=1.0):
    support = np.asarray(support, dtype=bool)
    rng = np.random.default_rng(seed)
    return ObservationFit(
        support,
        support * 1.0,
        size * rng.standard_normal((n, support.shape[0])),
        float(bic),
        np.zeros(support.shape),
        3,
        torch.zeros(1, support.shape[0]),
        converged,
    )


def test_competing_supports_follow_the_sparsest_within_rule():
    # chosen: 2 terms at BIC 0; a 3-term model 9 below it (inside tolerance 10, so the 2-term one is
    # the choice, but moving the tolerance by -2 picks the 3-term one)
    chosen = _fit([[1, 1, 0, 0]], 0.0)
    dense = _fit([[1, 1, 1, 0]], -9.0)
    far = _fit([[1, 0, 0, 1]], 30.0)
    rivals = competing_supports([chosen, dense, far], chosen, 10.0, 2.0)
    assert [r.support.tolist() for r in rivals] == [dense.support.tolist()]
    # the same dense model 5 below: the choice holds for tolerances 8..12
    dense.bic = -5.0
    assert competing_supports([chosen, dense, far], chosen, 10.0, 2.0) == []
    # a same-size support within the margin is a rival; one just outside it is not
    twin = _fit([[1, 0, 1, 0]], 1.5)
    assert [r.support.tolist() for r in competing_supports([chosen, twin], chosen, 10.0, 2.0)] == [
        twin.support.tolist()
    ]
    twin.bic = 2.5
    assert competing_supports([chosen, twin], chosen, 10.0, 2.0) == []


def test_collinear_terms_and_condition_numbers():
    rng = np.random.default_rng(3)
    n = 200
    a, b, c = rng.standard_normal((3, n))
    theta = np.stack([a, b, c, a + 2 * b + 1e-4 * rng.standard_normal(n)], axis=1)
    support = np.array([[True, True, False, False]])
    allowed = np.ones(4, dtype=bool)
    hits, conds = collinear_terms(theta, support, allowed, 0.01)
    assert [(i, j) for i, j, _ in hits] == [(0, 3)]  # column 3 lies in span{a, b}; column c does not
    cols = theta[:, :2] / np.linalg.norm(theta[:, :2], axis=0)
    assert conds[0] == pytest.approx(np.linalg.cond(cols), rel=1e-10)
    allowed[3] = False  # a column the search may not use is not a rival
    assert collinear_terms(theta, support, allowed, 0.01)[0] == []


@pytest.mark.parametrize("seed", range(4))
def test_breusch_pagan_separates_proportional_from_constant_noise(seed):
    rng = np.random.default_rng(seed)
    n = 200
    level = np.stack([np.cos(np.linspace(0, 12, n)) * np.exp(-np.linspace(0, 2, n)), rng.uniform(0.2, 3, n)], 1)
    flat = rng.standard_normal((n, 2))
    scaled = flat * np.abs(level) / np.abs(level).mean(axis=0)
    assert heteroscedasticity_p(scaled, level).max() < 1e-3
    # constant noise: p-values spread over (0, 1); none this extreme
    assert heteroscedasticity_p(flat, level).min() > 1e-4


def test_lag_one_z_detects_smooth_residuals_within_segments():
    n = 120
    t = torch.linspace(0, 10, n, dtype=torch.float64)
    x = torch.stack([torch.sin(t), torch.cos(t)], 1)
    seg = segments_of(t, x, torch.zeros(n, dtype=torch.long))
    rng = np.random.default_rng(0)
    white = rng.standard_normal((n, 2))
    assert np.abs(lag_one_z(white, seg)).max() < 4.0
    # residuals in segment (position-major) order: a smooth error along each segment
    pos = seg.index[seg.valid].numpy()  # observation row of each residual
    smooth = np.stack([np.sin(t.numpy()[pos] * 3), np.cos(t.numpy()[pos] * 2)], 1) + 0.1 * white
    assert lag_one_z(smooth, seg).min() > 4.0


def test_assess_is_high_on_a_clean_choice_and_names_each_reason():
    n = 120
    t = torch.linspace(0, 10, n, dtype=torch.float64)
    x = torch.stack([torch.sin(t), torch.cos(t)], 1)
    seg = segments_of(t, x, torch.zeros(n, dtype=torch.long))
    theta = np.stack([np.ones(n), x[:, 0].numpy(), x[:, 1].numpy(), (x[:, 0] * x[:, 1]).numpy()], 1)
    terms, names = ["1", "x", "y", "x y"], ["x", "y"]
    support = np.array([[False, False, True, False], [False, True, False, False]])
    chosen = _fit(support, 0.0, n=n, seed=1, size=0.01)
    other = _fit(np.array([[False, False, True, True], [False, True, False, False]]), 5.0, n=n, seed=2, size=0.01)
    good = assess([chosen, other], chosen, seg, theta, np.ones(4, dtype=bool), terms, names)
    assert good.level == "high" and good.reasons == [], good.reasons
    assert good.line() == "confidence: high"
    assert len(good.best) == 2 and good.best[0][1] == 0.0
    chosen.converged = False
    bad = assess([chosen, other], chosen, seg, theta, np.ones(4, dtype=bool), terms, names, stopped_at_limit=True)
    assert bad.level == "low"
    assert any("did not converge" in r for r in bad.reasons)
    assert any("round limit" in r for r in bad.reasons)
    assert bad.line().startswith("confidence: low (")


@pytest.mark.parametrize("seed", [41, 42, 43])
def test_three_species_competition_is_nearly_collinear_and_two_species_predation_is_not(seed):
    # the issue's failing family: a 3-species competitive Lotka–Volterra run settles on its
    # coexistence point, where a library term lies within 1% of the span of the true terms, so no
    # search on such data can be sure; the 2-species predator–prey orbit keeps every term >= 5% away
    from odeflow.data.discovery_families import random_instance
    from odeflow.discover.selection import polynomial_library

    for system, flagged in (("competitive-lv", True), ("lotka-volterra", False)):
        inst = random_instance(system, seed)
        _, _, clean = inst.observe(200, 0.0, seed)
        theta, terms = polynomial_library(clean.numpy(), inst.variables, 3)
        truth = inst.truth(terms) != 0
        hits, conds = collinear_terms(theta, truth, np.ones(len(terms), dtype=bool), 0.01)
        assert bool(hits) == flagged, (system, hits[:3])
        far = collinear_terms(theta, truth, np.ones(len(terms), dtype=bool), 0.05)[0]
        assert flagged or far == [], far[:3]


def _discover(system, seed, kind):
    import warnings

    from odeflow.data.discovery_families import random_instance
    from odeflow.discover import NeuralFitConfig, discover_equations
    from odeflow.discover.options import DiscoverOptions

    inst = random_instance(system, seed)
    t, x, _ = inst.observe(200, 0.01, seed, kind=kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = discover_equations(t, x, list(inst.variables), DiscoverOptions(ensemble=0), NeuralFitConfig())
    coef = res.equations.coefficients
    exact = bool(np.array_equal(coef != 0, inst.truth(res.equations.terms) != 0))
    return exact, res.confidence


@pytest.mark.slow  # a neural fit and the search per case: 1-4 min each
@pytest.mark.parametrize("system", ["damped-linear", "competitive-lv"])
@pytest.mark.parametrize("seed", [51, 52])
def test_the_issue_cases_are_right_or_flagged(system, seed):
    # the issue's failing cases, randomized: 200 irregular observations with 1% proportional noise,
    # default settings. Every answer is either the true support or comes out with low confidence.
    exact, conf = _discover(system, seed, "proportional")
    assert exact or conf.level == "low", conf.line()
    if system == "competitive-lv":  # its data sit near the coexistence point: always nearly collinear
        assert any("collinear" in r for r in conf.reasons), conf.line()


@pytest.mark.slow  # three neural fits and searches
def test_known_good_cases_mostly_come_out_high():
    # Lotka–Volterra predator–prey at 1% additive noise (recovered 20/20 by the benchmark): every
    # answer right or flagged, and at least 2 of 3 random instances right with high confidence
    results = [_discover("lotka-volterra", seed, "additive") for seed in (53, 54, 55)]
    assert all(exact or conf.level == "low" for exact, conf in results), [c.line() for _, c in results]
    assert sum(exact and conf.level == "high" for exact, conf in results) >= 2, [c.line() for _, c in results]


def _true_and_padded_fits(system: str, seed: int, noise: float):
    """The true support and the true support plus one random absent term, each fitted on 80 noisy
    observations (segments started from the clean states), with the library on the clean states."""
    from odeflow.data.discovery_families import random_instance
    from odeflow.discover.library import LibrarySpec
    from odeflow.discover.observation_fit import fit_on_observations

    inst = random_instance(system, seed)
    t, x, clean = inst.observe(80, noise, seed)
    library = LibrarySpec(degree=2).build(tuple(inst.variables), ())
    truth = inst.truth(library.terms)
    support = truth != 0
    seg = segments_of(t, x, torch.zeros(len(t), dtype=torch.long), clean, substeps=2)
    right = fit_on_observations(library, support, truth, seg)
    rng = np.random.default_rng(seed)
    i, j = (int(v) for v in rng.choice(np.argwhere(~support)))
    padded_support = support.copy()
    padded_support[i, j] = True
    padded = fit_on_observations(library, padded_support, right.coefficients, seg, right.starts)
    theta = library.numpy(clean.numpy(), None)
    return inst, library, seg, theta, right, padded, (i, j)


@pytest.mark.parametrize("system", ["damped-linear", "lotka-volterra"])
def test_a_spurious_small_term_is_flagged_and_true_terms_are_not(system):
    # randomized instances at 1% noise (80 observations): a term that is truly absent, fitted
    # beside the true ones, lands within the Bonferroni bound of 0 (its |ĉ|/se is ~|N(0, 1)| at
    # any noise level) and makes the answer "low" even when nothing else
    # fires (its support is the only one fitted: no competing support); the true support keeps
    # every term far from 0. Before the weak-term check the padded answers came out "high".
    flagged = 0
    seeds = range(4)
    for seed in seeds:
        inst, library, seg, theta, right, padded, (i, j) = _true_and_padded_fits(system, seed, 0.01)
        allowed = np.ones(len(library), dtype=bool)
        names = list(inst.variables)
        conf = assess([padded], padded, seg, theta, allowed, library.terms, names)
        weak = [r for r in conf.reasons if "standard errors of 0" in r]
        if weak and f"{library.terms[j]} in d{names[i]}/dt" in weak[0]:
            assert conf.level == "low"
            flagged += 1
        ok = assess([right], right, seg, theta, allowed, library.terms, names)
        assert not any("standard errors of 0" in r for r in ok.reasons), ok.reasons
    # |z| of an absent term is about |N(0, 1)|: below the bound (2.7 here) in ~99% of draws
    assert flagged >= len(seeds) - 1, flagged


def test_weak_terms_bound_is_bonferroni_over_the_candidates():
    from scipy.stats import norm

    coef = np.array([[1.0, 0.3, 0.0], [0.0, 0.0, -2.0]])
    se = np.array([[0.1, 0.1, 0.0], [0.0, 0.0, 1.0]])
    support = coef != 0
    hits, bound = weak_terms(coef, support, se, np.ones(3, dtype=bool), 0.05)
    assert bound == pytest.approx(norm.isf(0.05 / (2 * 3)))  # 2 equations × 3 columns − 3 chosen
    assert [(i, j) for i, j, _ in hits] == [(1, 2)]  # z = 2 < 2.39; z = 3 and 10 are above it
    wide = np.array([[0.1, 0.2, 0.0], [0.0, 0.0, 1.0]])
    assert [(i, j) for i, j, _ in weak_terms(coef, support, wide, np.ones(3, dtype=bool), 0.05)[0]] == [
        (0, 1),
        (1, 2),
    ]


@pytest.mark.parametrize("seed", [61, 62])
def test_competitive_lotka_volterra_data_leave_true_terms_unconfirmed_and_say_so(seed):
    # the issue's 3-species competition: one trajectory settles on the coexistence point, and at 5%
    # noise even the TRUE support, fitted from the clean states, has interaction coefficients
    # within the Bonferroni bound of 0 (|c|/se ~ 0-2 against 3.3): no selection rule can confirm
    # them from these data, so the answer must come out "low" even when the support is right
    from odeflow.data.discovery_families import random_instance
    from odeflow.discover.library import LibrarySpec
    from odeflow.discover.observation_fit import fit_on_observations

    inst = random_instance("competitive-lv", seed)
    t, x, clean = inst.observe(100, 0.05, seed)
    library = LibrarySpec(degree=3).build(tuple(inst.variables), ())
    truth = inst.truth(library.terms)
    seg = segments_of(t, x, torch.zeros(len(t), dtype=torch.long), clean, substeps=2)
    right = fit_on_observations(library, truth != 0, truth, seg)
    theta = library.numpy(clean.numpy(), None)
    conf = assess([right], right, seg, theta, np.ones(len(library), dtype=bool), library.terms, list(inst.variables))
    assert conf.level == "low"
    assert any("standard errors of 0" in r for r in conf.reasons), conf.reasons
