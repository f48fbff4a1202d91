"""The fast computations of the fits on the observations (observation_fit.FAST: polynomial fields by
odeflow.discover.sparse_field, predicted BICs with the segment starts projected out once) against
the reference ones, on randomized problems: the same numbers to rounding, the same search answers."""

import numpy as np
import pytest
import torch

from odeflow.data.discovery_families import random_instance
from odeflow.discover import observation_fit
from odeflow.discover.intervals import coefficient_intervals
from odeflow.discover.library import Library, LibrarySpec
from odeflow.discover.model_search import SearchProblem, refine_on_observations
from odeflow.discover.observation_fit import SparseModel, fit_on_observations, predicted_bics, segments_of
from odeflow.discover.options import SearchOptions, SelectionOptions
from odeflow.discover.selection import polynomial_library, polynomial_terms, select_model
from odeflow.discover.sparse_field import PolynomialColumns


@pytest.fixture
def reference(monkeypatch):
    """Run a block with the reference computations: `with reference(): ...`."""

    class Switch:
        def __enter__(self):
            monkeypatch.setattr(observation_fit, "FAST", False)

        def __exit__(self, *exc):
            monkeypatch.setattr(observation_fit, "FAST", True)

    return Switch


@pytest.mark.parametrize("seed", range(6))
def test_polynomial_columns_equal_the_library(seed):
    rng = np.random.default_rng(seed)
    d, p, degree = int(rng.integers(1, 4)), int(rng.integers(0, 2)), int(rng.integers(1, 5))
    lib = Library([f"x{i}" for i in range(d)], [f"u{i}" for i in range(p)], LibrarySpec(degree=degree))
    cols = np.sort(rng.choice(len(lib.terms), int(rng.integers(1, len(lib.terms) + 1)), replace=False))
    v = torch.as_tensor(rng.normal(size=(5, 7, d + p)) * rng.uniform(0.1, 10))
    ref = lib.evaluate(v.reshape(-1, d + p), cols).view(5, 7, -1)
    got = PolynomialColumns([lib.powers[c] for c in cols])(v)
    assert got.shape == ref.shape
    assert torch.allclose(got, ref, rtol=1e-14, atol=1e-300)


def _problem(system, seed, noise=0.05, n=60):
    inst = random_instance(system, seed)
    t, x, clean = inst.observe(n, noise, seed, kind="proportional")
    xdot = inst.field(None, clean).numpy()
    theta, terms = polynomial_library(clean.numpy(), inst.variables, 3)
    seg = segments_of(t, x, torch.zeros(len(t), dtype=torch.long), substeps=2)
    return inst, t, clean, xdot, theta, terms, seg


@pytest.mark.parametrize("system,seed", [("brusselator", 811), ("lorenz", 812), ("fitzhugh-nagumo", 813)])
def test_residuals_and_predicted_bics_equal_the_reference(system, seed, reference):
    inst, t, clean, xdot, theta, terms, seg = _problem(system, seed)
    powers = polynomial_terms(inst.variables, 3)
    truth = inst.truth(terms)
    rng = np.random.default_rng(seed)
    cur = fit_on_observations(powers, truth != 0, truth, seg, max_iter=3)
    cands = []
    for _ in range(25):  # random one- and two-term changes of the truth
        c = truth != 0
        for _ in range(int(rng.integers(1, 3))):
            i, j = rng.integers(c.shape[0]), rng.integers(c.shape[1])
            c[i, j] = ~c[i, j]
        cands.append(c)
    params = torch.cat([torch.as_tensor(truth[truth != 0]), seg.z0.reshape(-1)])
    fast_res = SparseModel(powers, truth != 0).residuals(params, seg)
    fast_bics = predicted_bics(powers, cur, cands, seg)
    with reference():
        ref_res = SparseModel(powers, truth != 0).residuals(params, seg)
        ref_bics = predicted_bics(powers, cur, cands, seg)
    assert torch.allclose(fast_res, ref_res, rtol=1e-12, atol=1e-12)
    # the finite-difference Jacobian (step 1e-6 relative) turns rounding differences of the
    # residuals (~1e-16) into ~1e-10 relative differences of its columns
    assert np.allclose(fast_bics, ref_bics, rtol=1e-7, atol=1e-6)


def test_an_empty_support_is_fitted_as_by_the_reference(reference):
    # no term at all (dx/dt = 0): the reference path, not PolynomialColumns (which needs a column)
    inst, t, clean, xdot, theta, terms, seg = _problem("damped-linear", 825, n=30)
    powers = polynomial_terms(inst.variables, 3)
    empty = np.zeros((2, len(terms)), dtype=bool)
    got = fit_on_observations(powers, empty, np.zeros(empty.shape), seg, max_iter=2)
    with reference():
        ref = fit_on_observations(powers, empty, np.zeros(empty.shape), seg, max_iter=2)
    assert np.isfinite(got.bic) and abs(got.bic - ref.bic) < 1e-9


def _search(system, seed, n):
    inst, t, clean, xdot, theta, terms, seg = _problem(system, seed, n=n)
    groups = np.minimum((5 * t.numpy() / t[-1].item()).astype(int), 4)
    sel = select_model(clean.numpy(), xdot, inst.variables, groups, options=SelectionOptions(ensemble=0))
    truth = inst.truth(terms)
    rng = np.random.default_rng(seed)
    wrong = truth.copy()
    on = list(zip(*np.nonzero(truth)))
    wrong[on[rng.integers(len(on))]] = 0.0  # one true term dropped: the search has work to do
    sel.coefficients = wrong
    keep = np.ones(len(terms), dtype=bool)
    problem = SearchProblem(theta, xdot, polynomial_terms(inst.variables, 3), keep, seg, terms, inst.variables)
    return sel, problem


def _same_answer(sel, problem, options, reference, draws):
    got = refine_on_observations(sel, problem, options)
    iv = coefficient_intervals(problem.library, got.fit, got.segments or problem.seg, draws, 0)
    with reference():
        ref = refine_on_observations(sel, problem, options)
        iv_ref = coefficient_intervals(problem.library, ref.fit, ref.segments or problem.seg, draws, 0)
    assert np.array_equal(got.fit.support, ref.fit.support)
    assert got.moves == ref.moves
    on = ref.fit.support
    se = ref.fit.stderr[on]
    assert np.all(np.abs(got.fit.coefficients - ref.fit.coefficients)[on] < 1e-5 * se)
    assert abs(got.bic - ref.bic) < 1e-5
    assert np.all(np.abs(iv.lower - iv_ref.lower)[on] < 1e-5 * se)
    assert np.all(np.abs(iv.upper - iv_ref.upper)[on] < 1e-5 * se)
    assert got.stopped_at_limit == ref.stopped_at_limit


@pytest.mark.parametrize("system,seed", [("damped-linear", 821), ("brusselator", 822)])
def test_a_fit_on_the_observations_gives_the_reference_answer(system, seed, reference):
    inst, t, clean, xdot, theta, terms, seg = _problem(system, seed, n=50)
    powers = polynomial_terms(inst.variables, 3)
    truth = inst.truth(terms)
    start = truth * np.random.default_rng(seed).uniform(0.8, 1.2, truth.shape)
    got = fit_on_observations(powers, truth != 0, start, seg)
    with reference():
        ref = fit_on_observations(powers, truth != 0, start, seg)
    on = truth != 0
    # equal to far below the fit's own resolution: differences are rounding, amplified by the
    # finite-difference Jacobian (~1e-10 relative), ~1e-8 standard errors on development seeds
    assert got.iterations == ref.iterations
    assert np.all(np.abs(got.coefficients - ref.coefficients)[on] < 1e-6 * ref.stderr[on])
    assert np.allclose(got.stderr, ref.stderr, rtol=1e-6, atol=0)
    assert abs(got.bic - ref.bic) < 1e-6


ROUNDING_STEERS = pytest.mark.xfail(
    strict=True,
    reason="the start fit stops at its iteration cap in a flat valley (one true term missing); rounding-level "
    "differences of that fit steer the noise model and the search along another path (docs/dynamics.md)",
)


@pytest.mark.slow
@pytest.mark.parametrize(
    "system,seed",
    [
        ("damped-linear", 821),
        ("lotka-volterra", 822),
        pytest.param("brusselator", 831, marks=ROUNDING_STEERS),
        pytest.param("fitzhugh-nagumo", 832, marks=ROUNDING_STEERS),  # another path, the same final support
        ("lorenz", 833),
    ],
)
def test_the_search_gives_the_reference_answer(system, seed, reference):
    sel, problem = _search(system, seed, n=60)
    _same_answer(sel, problem, SearchOptions(ensemble=10), reference, draws=5)
