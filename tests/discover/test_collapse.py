import numpy as np
import pytest
import torch

from odeflow.data.discovery_families import random_instance
from odeflow.discover.collapse import collapse_moves
from odeflow.discover.model_search import SearchProblem, refine_on_observations
from odeflow.discover.observation_fit import segments_of
from odeflow.discover.options import SearchOptions, SelectionOptions
from odeflow.discover.selection import polynomial_library, polynomial_terms, select_model


def _orbit(rng, n=300):
    """Samples along a random closed curve in the positive quadrant (x, y)."""
    s = np.sort(rng.uniform(0, 2 * np.pi, n))
    x = rng.uniform(0.8, 1.5) + rng.uniform(0.2, 0.6) * np.cos(s)
    y = rng.uniform(1.5, 3.0) + rng.uniform(0.5, 1.2) * np.sin(s + rng.uniform(-1, 1))
    return np.stack([x, y], axis=1)


def _imitation(theta, terms, truth, imitators):
    """The true model with equation 0's constant replaced by the least-squares combination of
    `imitators` (refitting the equation's other terms too)."""
    sup = truth[0] != 0
    sup[terms.index("1")] = False
    for k in imitators:
        sup[terms.index(k)] = True
    out = truth.copy()
    out[0] = 0.0
    out[0, sup] = np.linalg.lstsq(theta[:, sup], theta @ truth[0], rcond=None)[0]
    return out


@pytest.mark.parametrize("seed", range(5))
def test_the_sparse_support_a_dense_one_imitates_is_a_leading_candidate(seed):
    # randomized family: ẋ = a + c1 x + c2 x²y along a random orbit, imitated by y, y², y³ in place
    # of a; the 3-for-1 replacement (bring 1 in, take y, y², y³ out) must be proposed among the
    # equation's 3 best 3-for-1 candidates (those the search fits), with ρ and the start equal to a
    # direct least squares
    rng = np.random.default_rng(seed)
    states = _orbit(rng)
    theta, terms = polynomial_library(states, ("x", "y"), 3)
    truth = np.zeros((2, len(terms)))
    truth[0, [terms.index("1"), terms.index("x"), terms.index("x^2 y")]] = [
        rng.uniform(0.8, 1.2),
        -rng.uniform(3.0, 4.0),
        1.0,
    ]
    truth[1, [terms.index("x"), terms.index("x^2 y")]] = [rng.uniform(2.2, 3.2), -1.0]
    imit = _imitation(theta, terms, truth, ("y", "y^2", "y^3"))
    f = theta @ imit[0]
    assert np.linalg.norm(f - theta @ truth[0]) / np.linalg.norm(f) < 0.05  # a close imitation
    moves = collapse_moves(theta, imit, np.ones(len(terms), dtype=bool))
    assert [m.rho for m in moves] == sorted(m.rho for m in moves)
    eq0 = [m for m in moves if m.equation == 0 and len(m.removed) == 3]
    target = truth[0] != 0
    hit = [m for m in eq0[:3] if np.array_equal(m.support, target)]
    assert hit, [(terms[m.added], [terms[k] for k in m.removed], m.rho) for m in eq0[:5]]
    m = hit[0]
    assert terms[m.added] == "1" and {terms[k] for k in m.removed} == {"y", "y^2", "y^3"}
    w, rss, *_ = np.linalg.lstsq(theta[:, target], f, rcond=None)
    np.testing.assert_allclose(m.start[target], w, rtol=1e-8, atol=1e-10)
    assert m.rho == pytest.approx(np.sqrt(rss[0] / (f @ f)), rel=1e-6)
    assert not m.start[~target].any()


def test_moves_use_allowed_columns_only_and_replace_two_to_most_terms():
    rng = np.random.default_rng(7)
    states = _orbit(rng)
    theta, terms = polynomial_library(states, ("x", "y"), 3)
    coef = np.zeros((2, len(terms)))
    coef[0, rng.choice(len(terms), 5, replace=False)] = rng.normal(size=5)
    coef[1, rng.choice(len(terms), 1)] = 1.0  # one term: nothing to collapse
    allowed = rng.random(len(terms)) < 0.6
    moves = collapse_moves(theta, coef, allowed, most=3)
    assert moves and all(m.equation == 0 for m in moves)
    for m in moves:
        assert allowed[m.added] and coef[0, m.added] == 0
        assert 2 <= len(m.removed) <= 3 and all(coef[0, k] != 0 for k in m.removed)
        assert m.support.sum() == 5 - len(m.removed) + 1 and m.support[m.added]
    # every allowed left-out term gets its 2-for-1 and 3-for-1 replacement
    assert len(moves) == 2 * int((allowed & (coef[0] == 0)).sum())


def _imitated_search(seed, collapse):
    inst = random_instance("brusselator", seed)
    t, x, clean = inst.observe(150, 0.05, seed)
    theta, terms = polynomial_library(clean.numpy(), inst.variables, 3)
    truth = inst.truth(terms)
    start = _imitation(theta, terms, truth, ("y", "y^2", "y^3"))
    samples = theta @ start.T  # a field that learned the imitation
    groups = np.minimum((5 * t.numpy() / t[-1].item()).astype(int), 4)
    sel = select_model(clean.numpy(), samples, inst.variables, groups, options=SelectionOptions(ensemble=0))
    sel.coefficients = start
    sel.table = [[(start[i] != 0, 0, 0.0)] for i in range(2)]  # the regression proposes nothing else
    seg = segments_of(t, x, torch.zeros(len(t), dtype=torch.long), substeps=4)
    problem = SearchProblem(
        theta, samples, polynomial_terms(inst.variables, 3), np.ones(len(terms), bool), seg, terms, inst.variables
    )
    return refine_on_observations(sel, problem, SearchOptions(ensemble=0, collapse=collapse)), truth


@pytest.mark.slow
@pytest.mark.parametrize("seed", [40, 43, 44])
def test_the_search_replaces_the_imitating_terms_by_the_constant(seed):
    # Brusselator, 5% noise, started where the constant is imitated by y, y², y³ (a benchmark run's
    # failure): without the replacement moves the search stopped on a wrong support on these seeds
    # (experiments/discover_collapse.py), with them it returns the true one
    found, truth = _imitated_search(seed, 3)
    assert np.array_equal(found.fit.support, truth != 0), found.moves
    assert np.linalg.norm(found.fit.coefficients - truth) / np.linalg.norm(truth) < 0.1
    old, _ = _imitated_search(seed, 0)
    assert not np.array_equal(old.fit.support, truth != 0)
