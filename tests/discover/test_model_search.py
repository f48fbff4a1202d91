import numpy as np
import pytest
import torch

from odeflow.data.discovery_families import random_instance
from odeflow.discover.model_search import SearchProblem, refine_on_observations
from odeflow.discover.observation_fit import segments_of
from odeflow.discover.options import SearchOptions, SelectionOptions
from odeflow.discover.selection import polynomial_library, polynomial_terms, select_model

# restarts=0 throughout: these tests repair a given start with the greedy moves; the restarts (which
# multiply the search's time) are tested in test_noise_search.py


def _setup(system, seed, noise=0.01, n=150):
    inst = random_instance(system, seed)
    t, x, clean = inst.observe(n, noise, seed)
    xdot = inst.field(None, clean).numpy()
    groups = np.minimum((5 * t.numpy() / t[-1].item()).astype(int), 4)
    sel = select_model(clean.numpy(), xdot, inst.variables, groups, options=SelectionOptions(ensemble=0))
    theta, terms = polynomial_library(clean.numpy(), inst.variables, 3)
    seg = segments_of(t, x, torch.zeros(len(t), dtype=torch.long), substeps=4)
    return inst, sel, theta, xdot, terms, seg


@pytest.mark.parametrize("system,seed", [("lotka-volterra", 31), ("duffing", 32), ("van-der-pol", 33)])
def test_a_wrong_start_is_repaired_on_the_observations(system, seed):
    # the regression's model with one true term missing and one spurious term: the search on the
    # noisy observations (1%) restores the true support and coefficients within 2%
    inst, sel, theta, xdot, terms, seg = _setup(system, seed)
    truth = inst.truth(terms)
    rng = np.random.default_rng(seed)
    wrong = truth.copy()
    i, k = [(i, k) for i, k in zip(*np.nonzero(truth))][rng.integers(np.count_nonzero(truth))]
    wrong[i, k] = 0.0
    off = [(i, k) for i, k in zip(*np.nonzero(truth == 0)) if sum(polynomial_terms(inst.variables, 3)[k]) <= 2]
    j, m = off[rng.integers(len(off))]
    wrong[j, m] = 0.1 * np.abs(truth).max()
    sel.coefficients = wrong
    keep = np.ones(len(terms), dtype=bool)
    found = refine_on_observations(
        sel,
        SearchProblem(theta, xdot, polynomial_terms(inst.variables, 3), keep, seg, terms, inst.variables),
        SearchOptions(ensemble=20, restarts=0),
    )
    got = found.fit.coefficients
    assert np.array_equal(got != 0, truth != 0), found.moves
    assert np.linalg.norm(got - truth) / np.linalg.norm(truth) < 0.02
    assert found.bic < found.start_bic
    assert found.inclusion.shape == truth.shape
    assert np.all((found.inclusion >= 0) & (found.inclusion <= 1))
    assert found.inclusion[truth != 0].min() >= 0.5


def test_columns_left_out_are_never_added():
    inst, sel, theta, xdot, terms, seg = _setup("lotka-volterra", 34)
    keep = np.array([p[1] == 0 for p in polynomial_terms(inst.variables, 3)])  # no term with y
    sel.coefficients[:, ~keep] = 0.0
    found = refine_on_observations(
        sel,
        SearchProblem(theta, xdot, polynomial_terms(inst.variables, 3), keep, seg, terms, inst.variables),
        SearchOptions(ensemble=0, restarts=0),
    )
    assert not found.fit.support[:, ~keep].any()


@pytest.mark.parametrize("seed", [35, 36])
def test_a_diverging_start_and_a_blowing_up_least_squares_start_still_reach_the_truth(seed):
    # found trying a two-trajectory Van der Pol CSV: the regression's model blew up within a segment
    # (BIC inf) and the samples' least squares for the next moves blew up too; the search must
    # continue from the finite model it has instead of stopping at an empty equation
    inst, sel, theta, xdot, terms, seg = _setup("van-der-pol", seed)
    truth = inst.truth(terms)
    bad = truth.copy()
    bad[1] = 0.0
    bad[1, terms.index("y^3")] = 50.0  # y' = 50 y^3: diverges at once
    sel.coefficients = bad
    wild = xdot.copy()
    wild[:, 1] = 50.0 * theta[:, terms.index("y^3")]  # least squares on these samples blows up as well
    keep = np.ones(len(terms), dtype=bool)
    found = refine_on_observations(
        sel,
        SearchProblem(theta, wild, polynomial_terms(inst.variables, 3), keep, seg, terms, inst.variables),
        SearchOptions(ensemble=0, restarts=0),
    )
    assert found.start_bic == float("inf")
    assert np.array_equal(found.fit.coefficients != 0, truth != 0), found.moves
    assert np.linalg.norm(found.fit.coefficients - truth) / np.linalg.norm(truth) < 0.02
