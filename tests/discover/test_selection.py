import csv

import numpy as np
import pytest

from odeflow.data.discovery_families import random_instance
from odeflow.discover.options import SelectionOptions
from odeflow.discover.selection import (
    choose,
    polynomial_library,
    polynomial_terms,
    select_model,
    stlsq,
)
from odeflow.discover.sindy import Equations
from odeflow.discover.weak_form import weak_system


def _orbit(system, seed, n=400, noise=0.0):
    inst = random_instance(system, seed)
    t, x, clean = inst.observe(n, noise, seed)
    xdot = inst.field(None, clean).numpy()
    groups = np.minimum((5 * t.numpy() / t[-1].item()).astype(int), 4)
    return inst, t.numpy(), clean.numpy(), x.numpy(), xdot, groups


def test_library_names_and_order_match_pysindy():
    ps = pytest.importorskip("pysindy")
    x = np.random.default_rng(0).normal(size=(20, 3))
    theta, terms = polynomial_library(x, ["a", "b", "c"], 3)
    lib = ps.PolynomialLibrary(degree=3).fit(x)
    assert terms == list(lib.get_feature_names(["a", "b", "c"]))
    assert np.allclose(theta, lib.transform(x))
    # a lower degree's library is a prefix of the higher one
    assert polynomial_library(x, ["a", "b", "c"], 2)[1] == terms[: len(polynomial_terms("abc", 2))]


@pytest.mark.parametrize("system", ["lotka-volterra", "van-der-pol", "duffing"])
@pytest.mark.parametrize("seed", [11, 12])
def test_exact_derivatives_on_one_orbit_give_the_true_model(system, seed):
    # random family members; one trajectory each (near-collinear library), no threshold or degree given
    inst, _, clean, _, xdot, groups = _orbit(system, seed)
    sel = select_model(clean, xdot, inst.variables, groups, options=SelectionOptions(ensemble=0))
    truth = inst.truth(sel.terms)
    assert np.array_equal(sel.coefficients != 0, truth != 0)
    assert np.abs(sel.coefficients - truth).max() < 1e-5 * np.abs(truth).max()


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_smooth_derivative_error_of_one_percent_keeps_the_support(seed):
    # the situation after a neural fit: derivatives with a smooth relative error, which a dense
    # library can partly fit; the tolerance keeps the sparse model
    inst, t, clean, _, xdot, groups = _orbit("lotka-volterra", seed)
    wobble = 1 + 0.01 * np.sin(2.3 * t + np.arange(2)[:, None]).T
    sel = select_model(clean, xdot * wobble, inst.variables, groups, options=SelectionOptions(ensemble=0))
    truth = inst.truth(sel.terms)
    assert np.array_equal(sel.coefficients != 0, truth != 0)
    assert np.abs(sel.coefficients - truth)[truth != 0].max() < 0.03 * np.abs(truth).max()


def test_fixed_threshold_override_uses_raw_coefficients():
    inst, _, clean, _, xdot, groups = _orbit("van-der-pol", 5)
    sel = select_model(
        clean,
        xdot,
        inst.variables,
        groups,
        degrees=(3,),
        options=SelectionOptions(thresholds=(0.05,), relative=False, greedy=False, exhaustive=0, ensemble=0),
    )
    assert sel.candidates == [1, 1] and sel.degree == [3, 3]
    theta, _ = polynomial_library(clean, inst.variables, 3)
    assert np.allclose(sel.coefficients[1], stlsq(theta, xdot[:, 1], 0.05, relative=False))


def test_rule_picks_sparsest_within_tolerance():
    sup = lambda *on: np.isin(np.arange(4), on)  # noqa: E731
    cands = [(sup(0, 1, 2, 3), 3, None), (sup(0, 1), 2, None), (sup(0), 1, None)]
    means = np.array([1e-4, 3e-4, 2e-1])
    assert choose(cands, means, 0.0, rel_tol=4.0) == 1  # 3e-4 <= 5 x 1e-4; one term is far worse
    assert choose(cands, means, 0.0, rel_tol=1.0) == 0


def test_bootstrap_inclusion_and_intervals_written(tmp_path):
    inst, _, clean, _, xdot, groups = _orbit("lotka-volterra", 3)
    rng = np.random.default_rng(0)
    noisy = xdot + 0.01 * xdot.std(axis=0) * rng.normal(size=xdot.shape)
    sel = select_model(clean, noisy, inst.variables, groups, options=SelectionOptions(ensemble=30))
    truth = inst.truth(sel.terms)
    assert sel.inclusion.shape == truth.shape
    assert np.all(sel.inclusion[truth != 0] == 1.0) and np.all(sel.inclusion[truth == 0] <= 0.2)
    assert np.all(sel.lower <= sel.coefficients + 1e-12) and np.all(sel.coefficients <= sel.upper + 1e-12)
    on = truth != 0
    assert np.all(sel.lower[on] <= truth[on] + 0.02) and np.all(truth[on] - 0.02 <= sel.upper[on])
    eq = Equations(list(inst.variables), sel.terms, sel.coefficients, sel.inclusion, sel.lower, sel.upper)
    eq.write(tmp_path)
    with (tmp_path / "inclusion.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["equation", *sel.terms] and [r[0] for r in rows[1:]] == ["dx/dt", "dy/dt"]
    assert float(rows[1][rows[0].index("x y")]) == 1.0
    line = (tmp_path / "equations.txt").read_text().splitlines()[0]
    assert line.startswith("dx/dt = (") and " ± " in line and ") x y" in line


def test_bad_selection_inputs():
    x = np.random.default_rng(0).normal(size=(30, 2))
    with pytest.raises(ValueError, match="at least 2 time windows"):
        select_model(x, x, ["x", "y"], np.zeros(30))
    with pytest.raises(ValueError, match="degrees must be >= 1"):
        select_model(x, x, ["x", "y"], np.arange(30) % 3, degrees=(0,))
    with pytest.raises(ValueError, match=r"xdot \[n, d\]"):
        select_model(x, x[:, :1], ["x", "y"], np.arange(30) % 3)


@pytest.mark.parametrize("system,seed", [("lotka-volterra", 31), ("duffing", 32)])
def test_weak_form_rows_hold_the_true_model(system, seed):
    # clean irregular samples: the weak-form rows are satisfied by the true coefficients up to the
    # trapezoid rule's error, and least squares on the true support returns them
    inst, t, clean, _, _, _ = _orbit(system, seed, n=800)
    g, b, terms, _ = weak_system(t, clean, inst.variables)
    truth = inst.truth(terms)
    assert np.linalg.norm(g @ truth.T - b) < 0.03 * np.linalg.norm(b)
    for i in range(len(truth)):
        on = truth[i] != 0
        xi = np.linalg.lstsq(g[:, on], b[:, i], rcond=None)[0]
        assert np.allclose(xi, truth[i, on], rtol=0.02)


def test_add_back_adds_only_established_terms_and_drops_the_rest():
    from odeflow.discover.selection import add_back

    # score(support) on 4 terms: term 0 essential, term 1 small but real (leaving it out: ×4, +0.003),
    # term 2 spurious on a tiny error (×3 but only +2e-5), term 3 spurious (×1.1)
    def score(sup):
        s = 0.001
        if not sup[0]:
            s += 1.0
        if not sup[1]:
            s += 0.003
        s = s / 3 if sup[2] and s < 1e-4 else s
        return s * (0.9 if sup[3] else 1.0)

    start = np.array([True, False, False, True])  # a tolerance rule kept term 3 and left out term 1
    got = add_back(start, score, score(start), gain=2.0)
    assert got.tolist() == [True, True, False, False]

    # with a tiny error, a ×3 gain that adds less than the floor is not enough
    def tiny(sup):
        return (1.0 if not sup[0] else 3e-5) / (3 if sup[2] else 1)

    assert add_back(np.array([True, False, False, False]), tiny, 3e-5, gain=2.0).tolist() == [True, False, False, False]


@pytest.mark.parametrize("seed", [24, 25])
def test_quiet_windows_do_not_dominate_the_score(seed):
    # SIR: after the epidemic the derivatives are ~0, so a window's own relative error is ~1 whatever
    # the model; pooled scores still pick the true model under a 1% smooth derivative error
    from odeflow.discover.invariants import find_affine_invariants

    inst, t, clean, _, xdot, groups = _orbit("sir", seed)
    wobble = 1 + 0.01 * np.sin(1.7 * t + np.arange(3)[:, None]).T
    laws = find_affine_invariants(clean, xdot)
    sel = select_model(
        clean,
        xdot * wobble,
        inst.variables,
        groups,
        options=SelectionOptions(ensemble=0),
        exclude=[law.eliminated for law in laws],
    )
    truth = inst.truth(sel.terms)
    assert np.array_equal(sel.coefficients != 0, truth != 0)
    assert np.abs(sel.coefficients - truth)[truth != 0].max() < 0.03 * np.abs(truth).max()
