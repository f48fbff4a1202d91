import numpy as np
import pytest
import torch

from odeflow.data.discovery_families import random_instance
from odeflow.discover.observation_fit import (
    bic_of,
    fit_on_observations,
    monomials,
    predicted_bics,
    segments_of,
)
from odeflow.discover.selection import polynomial_library, polynomial_terms


def _observed(system, seed, n=120, noise=0.0):
    inst = random_instance(system, seed)
    t, x, clean = inst.observe(n, noise, seed)
    return inst, t, x, clean


def test_monomials_match_the_numpy_library():
    x = np.random.default_rng(3).normal(size=(17, 3))
    powers = polynomial_terms("abc", 3)
    theta, _ = polynomial_library(x, ["a", "b", "c"], 3)
    got = monomials(torch.as_tensor(x), torch.tensor(powers)).numpy()
    assert np.allclose(got, theta, rtol=1e-12, atol=1e-12)


def test_segments_cover_every_observation_once_and_never_cross_trajectories():
    rng = np.random.default_rng(0)
    sizes = [23, 9, 41]
    traj = torch.tensor(np.repeat(np.arange(3), sizes))
    t = torch.cat([torch.sort(torch.rand(k, dtype=torch.float64)).values for k in sizes])
    x = torch.as_tensor(rng.normal(size=(sum(sizes), 2)))
    seg = segments_of(t, x, traj, length=10)
    rows = seg.index[seg.valid]
    assert sorted(rows.tolist()) == list(range(sum(sizes)))
    for s in range(seg.index.shape[1]):
        mine = seg.index[:, s][seg.index[:, s] >= 0]
        assert len(set(traj[mine].tolist())) == 1
        assert 5 <= len(mine) <= 15  # a short tail joins the segment before it
        assert torch.all(t[mine][1:] > t[mine][:-1])
    assert torch.equal(seg.target, x[rows])
    # the interval lengths are those between consecutive rows of a segment, 0 past its end
    s0 = seg.index[:, 0]
    assert torch.allclose(seg.dt[0, 0, 0], t[s0[1]] - t[s0[0]])


@pytest.mark.parametrize("system,seed", [("lotka-volterra", 5), ("van-der-pol", 6), ("lorenz", 7)])
def test_levenberg_marquardt_recovers_the_coefficients_from_clean_observations(system, seed):
    inst, t, x, _ = _observed(system, seed)
    terms = polynomial_library(np.zeros((1, len(inst.variables))), inst.variables, 3)[1]
    truth = inst.truth(terms)
    rng = np.random.default_rng(seed)
    start = truth * (1 + 0.2 * rng.uniform(-1, 1, truth.shape))  # 20% off on every term
    seg = segments_of(t, x, torch.zeros(len(t), dtype=torch.long), substeps=8)
    fit = fit_on_observations(polynomial_terms(inst.variables, 3), truth != 0, start, seg)
    # exact data: only rk4's own error (8 steps per interval) is left
    assert np.abs(fit.coefficients - truth).max() < 1e-3 * np.abs(truth).max()
    assert np.abs(fit.residuals).max() < 1e-3


def _true_model_fit(system, seed):
    """A noisy (1%) instance, its degree-3 library and the true support fitted to the observations."""
    inst, t, x, _ = _observed(system, seed, n=150, noise=0.01)
    powers = polynomial_terms(inst.variables, 3)
    terms = polynomial_library(np.zeros((1, len(inst.variables))), inst.variables, 3)[1]
    truth = inst.truth(terms)
    seg = segments_of(t, x, torch.zeros(len(t), dtype=torch.long), substeps=4)
    return t, powers, terms, truth, seg, fit_on_observations(powers, truth != 0, truth, seg)


def test_bic_prefers_the_true_support_over_a_spurious_term_and_a_missing_one():
    t, powers, terms, truth, seg, true = _true_model_fit("lotka-volterra", 8)
    extra = (truth != 0).copy()
    extra[0, terms.index("y^2")] = True
    missing = (truth != 0).copy()
    missing[1, terms.index("y")] = False
    with_extra = fit_on_observations(powers, extra, truth, seg)
    without = fit_on_observations(powers, missing, truth, seg)
    assert true.bic < with_extra.bic < true.bic + 2 * np.log(len(t))  # the extra term buys ~nothing
    assert without.bic > true.bic + 50
    # the standard errors cover the truth at 1% noise
    on = truth != 0
    assert np.all(np.abs(true.coefficients - truth)[on] < 4 * true.stderr[on])


def test_a_diverging_model_scores_infinity_not_nan():
    inst, t, x, _ = _observed("lotka-volterra", 9)
    powers = polynomial_terms(inst.variables, 3)
    support = np.zeros((2, len(powers)), dtype=bool)
    support[:, powers.index((3, 0))] = True
    start = np.zeros(support.shape)
    start[support] = 50.0  # x' = 50 x^3 blows up within a segment
    fit = fit_on_observations(powers, support, start, segments_of(t, x, torch.zeros(len(t), dtype=torch.long)))
    assert fit.bic == float("inf")


def test_predicted_bic_is_exact_at_the_current_model_and_close_for_a_move():
    _, powers, terms, truth, seg, cur = _true_model_fit("duffing", 4)
    add = (truth != 0).copy()
    add[0, terms.index("x")] = True
    drop = (truth != 0).copy()
    drop[1, terms.index("y")] = False
    same, p_add, p_drop = predicted_bics(powers, cur, [truth != 0, add, drop], seg)
    assert same == pytest.approx(cur.bic, abs=1e-6 * abs(cur.bic))
    assert p_add == pytest.approx(fit_on_observations(powers, add, cur.coefficients, seg, cur.starts).bic, abs=2.0)
    assert p_drop > cur.bic + 20  # dropping the damping is clearly worse, as predicted


def test_bic_of_weights():
    r = np.random.default_rng(1).normal(size=(30, 2))
    assert bic_of(r, 3, np.ones(30)) == pytest.approx(bic_of(r, 3))
    assert bic_of(np.full((4, 2), np.inf), 1) == float("inf")


def test_difference_jacobian_matches_forward_mode():
    from torch.func import jacfwd

    from odeflow.discover.observation_fit import SparseModel, jacobian

    inst, t, x, _ = _observed("lorenz", 3, n=60, noise=0.01)
    powers = polynomial_terms(inst.variables, 2)
    terms = polynomial_library(np.zeros((1, 3)), inst.variables, 2)[1]
    truth = inst.truth(terms)
    model = SparseModel(powers, truth != 0)
    seg = segments_of(t, x, torch.zeros(len(t), dtype=torch.long), length=7)
    params = torch.cat([model.from_matrix(truth), seg.z0.reshape(-1)])
    dense = jacfwd(lambda p: model.residuals(p, seg).reshape(-1))(params)
    assert torch.allclose(jacobian(model, params, seg), dense, rtol=1e-6, atol=1e-8)
