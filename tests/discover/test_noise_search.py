import numpy as np
import pytest
import torch

from odeflow.data.discovery_families import random_instance
from odeflow.discover.model_search import SearchProblem, _moves_of, _restart_support, refine_on_observations
from odeflow.discover.observation_fit import segments_of
from odeflow.discover.options import SearchOptions, SelectionOptions
from odeflow.discover.selection import _gram_rss, polynomial_library, polynomial_terms, select_model


def _setup(system, seed, noise, kind, n=200):
    inst = random_instance(system, seed)
    t, x, clean = inst.observe(n, noise, seed, kind=kind)
    xdot = inst.field(None, clean).numpy()
    groups = np.minimum((5 * t.numpy() / t[-1].item()).astype(int), 4)
    sel = select_model(clean.numpy(), xdot, inst.variables, groups, options=SelectionOptions(ensemble=0))
    theta, terms = polynomial_library(clean.numpy(), inst.variables, 3)
    seg = segments_of(t, x, torch.zeros(len(t), dtype=torch.long), substeps=4)
    return inst, sel, theta, xdot, terms, seg


def test_pair_moves_swap_and_add_two_terms_within_one_equation():
    inst, sel, theta, xdot, terms, seg = _setup("lotka-volterra", 41, 0.01, "additive", n=60)
    sup = inst.truth(terms)[0] != 0
    kept = np.arange(len(terms))
    rss = _gram_rss(theta, xdot[:, 0])
    single = list(_moves_of(0, sup, sel, rss, kept, terms, inst.variables, None, 0, pairs=0))
    paired = list(_moves_of(0, sup, sel, rss, kept, terms, inst.variables, None, 0, pairs=4))
    extra = [s for name, s in paired[len(single) :]]
    # |S| × 4 swaps, then C(4, 2) additions of two terms
    assert len(extra) == sup.sum() * 4 + 6
    for s in extra[: sup.sum() * 4]:
        assert s.sum() == sup.sum() and (s & ~sup).sum() == 1
    for s in extra[sup.sum() * 4 :]:
        assert s.sum() == sup.sum() + 2 and (s & sup).sum() == sup.sum()


def test_restarts_start_from_the_next_best_cross_validated_supports():
    inst, sel, theta, xdot, terms, seg = _setup("duffing", 42, 0.01, "additive", n=60)
    current = sel.coefficients != 0
    for rank in (1, 2):
        other = _restart_support(sel, current, rank, np.arange(len(terms)))
        assert other is not None
        for i in range(current.shape[0]):
            ranked = [s for s, _, _ in sorted(sel.table[i], key=lambda c: c[2]) if not np.array_equal(s, current[i])]
            assert np.array_equal(other[i], ranked[rank - 1])


@pytest.mark.slow
@pytest.mark.parametrize("seed", [61, 62, 63])
def test_proportional_noise_does_not_buy_spurious_terms(seed):
    # a linear oscillator observed with 1% proportional noise, the search started at the true model:
    # with the fitted noise model (the variance follows the level) no spurious term lowers BIC, the
    # chosen noise kinds have a proportional part, and the true coefficients lie within 4 standard errors
    inst, sel, theta, xdot, terms, seg = _setup("damped-linear", seed, 0.01, "proportional")
    truth = inst.truth(terms)
    sel.coefficients = truth.copy()
    keep = np.ones(len(terms), dtype=bool)
    found = refine_on_observations(
        sel,
        SearchProblem(theta, xdot, polynomial_terms(inst.variables, 3), keep, seg, terms, inst.variables),
        SearchOptions(ensemble=0),
    )
    assert found.noise is not None and all(k in ("proportional", "both") for k in found.noise.kinds)
    assert np.array_equal(found.fit.support, truth != 0), found.moves
    on = truth != 0
    assert np.all(np.abs(found.fit.coefficients[on] - truth[on]) <= 4 * found.fit.stderr[on])


@pytest.mark.parametrize("seed", [73, 74])
def test_a_noise_kind_is_called_wrong_only_on_strong_evidence(seed):
    # proportional noise scored under a constant model: the check says so (by > 10 BIC); the kinds
    # chosen on the same fit are never called wrong
    from odeflow.discover.model_search import noise_check, variance_of
    from odeflow.discover.observation_fit import fit_on_observations

    inst = random_instance("damped-linear", seed)
    t, x, _ = inst.observe(100, 0.03, seed, kind="proportional")
    seg = segments_of(t, x, torch.zeros(len(t), dtype=torch.long), substeps=4)
    powers = polynomial_terms(inst.variables, 1)
    _, terms = polynomial_library(np.zeros((1, 2)), inst.variables, 1)
    truth = inst.truth(terms)
    fit = fit_on_observations(powers, truth != 0, truth, seg)
    wrong = noise_check(fit, seg, variance_of(fit, seg, ["constant"]), inst.variables)
    assert sum("fits the chosen model worse" in line for line in wrong) == 2, wrong
    right = noise_check(fit, seg, variance_of(fit, seg), inst.variables)
    assert not any("fits the chosen model worse" in line for line in right), right
