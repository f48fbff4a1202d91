"""The SINDy library (polynomial, Fourier and user terms, control inputs) and the input signal u(t)."""

import numpy as np
import pytest
import torch

from odeflow.discover.inputs import InputSignal
from odeflow.discover.library import LibrarySpec, UserTerm, parse_library
from odeflow.discover.neural_fit import rk4_flow
from odeflow.discover.observation_fit import fit_on_observations, segments_of
from odeflow.discover.options import SelectionOptions
from odeflow.discover.pipeline import check_library_size
from odeflow.discover.selection import select_model


def _column(term: str, names, v: np.ndarray) -> np.ndarray:
    """Independent evaluation of a term from its printed name."""
    if term == "1":
        return np.ones(len(v))
    for f, fn in (("sin", np.sin), ("cos", np.cos)):
        if term.startswith(f + "("):
            inner = term[len(f) + 1 : -1]
            k, _, name = inner.rpartition("*")
            return fn((int(k) if k else 1) * v[:, names.index(name)])
    out = np.ones(len(v))
    for factor in term.split(" "):
        name, _, e = factor.partition("^")
        out = out * v[:, names.index(name)] ** (int(e) if e else 1)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_columns_match_their_names_on_random_libraries(seed):
    rng = np.random.default_rng(seed)
    d, p = int(rng.integers(1, 4)), int(rng.integers(0, 3))
    states, inputs = [f"s{i}" for i in range(d)], [f"u{i}" for i in range(p)]
    spec = LibrarySpec(degree=int(rng.integers(0, 4)), fourier=int(rng.integers(0, 3)))
    lib = spec.build(states, inputs)
    x, u = rng.normal(size=(40, d)), rng.normal(size=(40, p))
    theta = lib.numpy(x, u if p else None)
    assert theta.shape == (40, spec.size(d + p)) == (40, len(lib.terms))
    assert len(set(lib.terms)) == len(lib.terms)
    v = np.concatenate([x, u], axis=1)
    for j, term in enumerate(lib.terms):
        assert np.allclose(theta[:, j], _column(term, states + inputs, v), rtol=1e-12, atol=1e-12), term
    # a subset of columns in torch, as the fits on the observations evaluate it
    cols = np.sort(rng.choice(len(lib.terms), size=min(3, len(lib.terms)), replace=False))
    assert np.allclose(lib.evaluate(torch.as_tensor(v), cols).numpy(), theta[:, cols])


def test_levels_and_left_out_variables():
    lib = parse_library("poly+fourier:1").build(["x", "y"])
    levels = lib.levels()
    assert sorted(levels) == [1, 2, 3]
    names = np.array(lib.terms)
    assert list(names[levels[1]]) == ["1", "x", "y", "sin(x)", "cos(x)", "sin(y)", "cos(y)"]
    assert levels[3].all() and levels[2].sum() == 6 + 4
    keep = lib.columns_without([1])
    assert not any("y" in t for t in names[keep]) and "sin(x)" in names[keep]
    only = parse_library("fourier:2").build(["x"])
    assert only.terms == ["sin(x)", "cos(x)", "sin(2*x)", "cos(2*x)"] and list(only.levels()) == [0]


@pytest.mark.parametrize(
    "text,degree,match",
    [
        ("polynomial", None, "cannot read 'polynomial'"),
        ("poly:x", None, "cannot read 'poly:x'"),
        ("fourier", None, "cannot read 'fourier'"),
        ("fourier:0", None, "Fourier order must be >= 1"),
        ("poly+poly:2", None, "'poly' given twice"),
        ("poly:2", 3, "says degree 2 but --degree is 3"),
        ("fourier:1", 2, "--degree 2 needs a polynomial part"),
    ],
)
def test_bad_library_strings_are_clear_errors(text, degree, match):
    with pytest.raises(ValueError, match=match):
        parse_library(text, degree)


def test_library_strings():
    assert parse_library("poly") == LibrarySpec()
    assert parse_library("poly", 2) == LibrarySpec(degree=2)
    assert parse_library(" Poly:2 + fourier:3 ") == LibrarySpec(degree=2, fourier=3)
    assert parse_library("fourier:1") == LibrarySpec(polynomial=False, fourier=1)


def test_user_terms_checked():
    good = UserTerm("tanh(x)", lambda v: torch.tanh(v[:, 0]))
    with pytest.raises(ValueError, match="distinct non-empty names"):
        LibrarySpec(custom=(good, good))
    with pytest.raises(TypeError, match="must be callable"):
        LibrarySpec(custom=(UserTerm("a", 3),))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="repeat other library terms"):
        LibrarySpec(custom=(UserTerm("x y", lambda v: v[:, 0]),)).build(["x", "y"])
    bad = LibrarySpec(degree=1, custom=(UserTerm("pair", lambda v: v[:, :2]),)).build(["x", "y"])
    with pytest.raises(ValueError, match=r"user term 'pair' must return a tensor \[N\]"):
        bad.numpy(np.ones((5, 2)))
    inf = LibrarySpec(degree=1, custom=(UserTerm("1/x", lambda v: 1 / v[:, 0]),)).build(["x"])
    with pytest.raises(ValueError, match=r"\['1/x'\] are not finite"):
        inf.numpy(np.zeros((5, 1)))


def test_libraries_past_the_limit_are_refused_with_the_flags_that_fix_them():
    spec = parse_library("poly+fourier:3")
    assert spec.size(4) == 35 + 24
    with pytest.raises(ValueError, match=r"59 terms, over --max-terms 40.*--degree 2 \(39 terms\).*fourier:2"):
        check_library_size(4, None, 40, spec)
    with pytest.raises(ValueError, match=r"--library without fourier"):
        check_library_size(4, None, 10, parse_library("poly:1+fourier:1"))
    assert check_library_size(4, None, 60, spec) == 59


@pytest.mark.parametrize("seed", range(4))
def test_input_signal_is_linear_between_each_trajectorys_observations(seed):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(4, 12, size=3)
    traj = torch.as_tensor(np.repeat(np.arange(3), sizes))
    t = torch.as_tensor(np.concatenate([np.sort(rng.uniform(0, 5, k)) for k in sizes]))
    u = torch.as_tensor(rng.normal(size=(int(sizes.sum()), 2)))
    sig = InputSignal(t, u, traj, ["a", "b"])
    q = torch.as_tensor(rng.uniform(-1, 6, 50))
    k = torch.as_tensor(rng.integers(0, 3, 50))
    got = sig.at(q, k).numpy()
    for j in range(50):
        on = (traj == k[j]).numpy()
        want = [np.interp(float(q[j]), t.numpy()[on], u.numpy()[on, c]) for c in range(2)]
        assert np.allclose(got[j], want, atol=1e-12)


def test_rk4_integrates_a_linear_input_exactly():
    # z' = u(t) with u linear between observations: rk4 integrates the piecewise-quadratic z exactly
    t = torch.tensor([0.0, 0.4, 1.1, 1.5], dtype=torch.float64)
    u = torch.tensor([[1.0], [-2.0], [0.5], [3.0]], dtype=torch.float64)
    sig = InputSignal(t, u, torch.zeros(4, dtype=torch.long), ["u"])
    dt = (t[1:] - t[:-1]).unsqueeze(-1)
    stages = sig.stages(t[:-1], dt, 3, torch.zeros(3, dtype=torch.long))
    z = rk4_flow(lambda s, z, u_: u_, torch.zeros(3, 1, dtype=torch.float64), dt, 3, inputs=stages)
    want = 0.5 * (u[:-1] + u[1:]) * dt  # the trapezoid is exact for a linear integrand
    assert torch.allclose(z, want, atol=1e-14)


def _pendulum(seed, n=100, noise=0.01):
    from odeflow.data.discovery_families import random_instance

    inst = random_instance("pendulum", seed)
    t, x, clean = inst.observe(n, noise, seed)
    return inst, t, x, clean, inst.field(None, clean).numpy()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_pendulum_needs_sin_and_the_selection_finds_it(seed):
    inst, t, _, clean, xdot = _pendulum(seed, n=200)
    groups = np.minimum((5 * t.numpy() / t[-1].item()).astype(int), 4)
    spec = parse_library(inst.library)
    lib = spec.build(inst.variables)
    sel = select_model(clean.numpy(), xdot, inst.variables, groups, spec.degrees, (), SelectionOptions(ensemble=0), lib)
    truth = inst.truth(lib.terms)
    assert np.array_equal(sel.coefficients != 0, truth != 0)
    assert np.abs(sel.coefficients - truth).max() < 1e-6
    # the polynomial library alone cannot hold it: its best degree-3 fit leaves a clear residual
    poly = select_model(clean.numpy(), xdot, inst.variables, groups, options=SelectionOptions(ensemble=0))
    assert max(poly.score) > 1e3 * max(sel.score)


def _forced(seed, n=150, noise=0.01):
    """x' = y, y' = −k x − c y + g u(t), u = sin(w t + φ) observed as a column."""
    from odeflow.solve import solve
    from odeflow.solvers.stepping import Adaptive

    rng = np.random.default_rng(seed)
    k, c, g = rng.uniform(1, 3), rng.uniform(0.1, 0.4), rng.uniform(0.5, 1.5)
    w, phi = rng.uniform(0.5, 1.5), rng.uniform(0, 2 * np.pi)
    t = torch.as_tensor(np.sort(np.concatenate([[0.0], rng.uniform(0, 20, n - 1)])))

    def f(s, z):
        return torch.stack([z[..., 1], -k * z[..., 0] - c * z[..., 1] + g * torch.sin(w * s + phi)], -1)

    clean = solve(f, torch.as_tensor(rng.uniform(-1.5, 1.5, 2)), t, method="dopri5", step=Adaptive(1e-10, 1e-12)).ys
    x = clean + noise * clean.std(0) * torch.as_tensor(rng.normal(size=clean.shape))
    truth = {"x": {"y": 1.0}, "y": {"x": -k, "y": -c, "u": g}}
    return t, x, clean, torch.sin(w * t + phi).unsqueeze(-1), f(t, clean).numpy(), truth


def _matrix(truth, terms):
    out = np.zeros((2, len(terms)))
    for i, v in enumerate("xy"):
        for term, c in truth[v].items():
            out[i, terms.index(term)] = c
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_forced_system_is_recovered_with_its_input_column(seed):
    from odeflow.discover.options import DiscoverOptions
    from odeflow.discover.pipeline import discover_equations

    t, x, clean, u, xdot, truth = _forced(seed)
    lib = LibrarySpec().build(["x", "y"], ["u"])
    groups = np.minimum((5 * t.numpy() / t[-1].item()).astype(int), 4)
    sel = select_model(
        clean.numpy(), xdot, ["x", "y"], groups, (1, 2, 3), (), SelectionOptions(ensemble=0), lib, u.numpy()
    )
    want = _matrix(truth, lib.terms)
    assert np.array_equal(sel.coefficients != 0, want != 0)
    # end to end on the noisy observations (weak form: no neural fit), the input not predicted
    res = discover_equations(t, x, ["x", "y"], DiscoverOptions(method="weak", ensemble=0), inputs=u, input_names=("u",))
    assert res.equations.variables == ["x", "y"] and "u" in res.equations.terms
    assert np.array_equal(res.equations.coefficients != 0, want != 0), res.equations.lines()
    assert np.linalg.norm(res.equations.coefficients - want) / np.linalg.norm(want) < 0.05


@pytest.mark.parametrize("seed", [4, 5])
def test_the_fit_on_the_observations_interpolates_the_input(seed):
    # the true support fitted to 1%-noise observations with u(t) linear between them: coefficients
    # within 3%; without the input term the fit is far worse (BIC) — the input is really used
    t, x, _, u, _, truth = _forced(seed, n=200)
    lib = LibrarySpec(degree=1).build(["x", "y"], ["u"])
    want = _matrix(truth, lib.terms)
    traj = torch.zeros(len(t), dtype=torch.long)
    seg = segments_of(t, x, traj, substeps=4, signal=InputSignal(t, u, traj, ["u"]))
    fit = fit_on_observations(lib, want != 0, want * 1.1, seg)
    assert np.linalg.norm(fit.coefficients - want) / np.linalg.norm(want) < 0.03
    without = want.copy()
    without[1, lib.terms.index("u")] = 0.0
    assert fit_on_observations(lib, without != 0, without, seg).bic > fit.bic + 100


def test_a_user_callable_term_is_selected_and_fitted():
    # x' = y, y' = −2 tanh(3 x) − 0.2 y: tanh(3x) is no polynomial; given as a user term it is found
    from odeflow.solve import solve
    from odeflow.solvers.stepping import Adaptive

    def f(s, z):
        return torch.stack([z[..., 1], -2 * torch.tanh(3 * z[..., 0]) - 0.2 * z[..., 1]], -1)

    rng = np.random.default_rng(7)
    t = torch.as_tensor(np.sort(np.concatenate([[0.0], rng.uniform(0, 15, 199)])))
    clean = solve(f, torch.tensor([1.5, 0.0], dtype=torch.float64), t, method="dopri5", step=Adaptive(1e-10, 1e-12)).ys
    spec = LibrarySpec(degree=2, custom=(UserTerm("tanh(3*x)", lambda v: torch.tanh(3 * v[:, 0])),))
    lib = spec.build(["x", "y"])
    groups = np.minimum((5 * t.numpy() / t[-1].item()).astype(int), 4)
    xdot = f(t, clean).numpy()
    sel = select_model(clean.numpy(), xdot, ["x", "y"], groups, spec.degrees, (), SelectionOptions(ensemble=0), lib)
    want = np.zeros((2, len(lib)))
    want[0, lib.terms.index("y")] = 1.0
    want[1, lib.terms.index("tanh(3*x)")], want[1, lib.terms.index("y")] = -2.0, -0.2
    assert np.array_equal(sel.coefficients != 0, want != 0)
    x = clean + 0.01 * clean.std(0) * torch.as_tensor(rng.normal(size=clean.shape))
    seg = segments_of(t, x, torch.zeros(len(t), dtype=torch.long), substeps=4)
    fit = fit_on_observations(lib, want != 0, sel.coefficients, seg)
    assert np.abs(fit.coefficients - want).max() < 0.03


def test_names_that_would_read_as_fourier_terms_are_refused_only_with_fourier_terms():
    assert LibrarySpec(degree=1).build(["x(t)", "y"]).terms == ["1", "x(t)", "y"]
    with pytest.raises(ValueError, match=r"\['x\(t\)'\] would make ambiguous library terms"):
        parse_library("poly:1+fourier:1").build(["x(t)", "y"])
    with pytest.raises(ValueError, match="state and input names must be distinct"):
        LibrarySpec().build(["x", "u"], ["u"])


def test_a_fit_with_inputs_resamples_along_u_of_t():
    # the fitted ODE solved with u(t) (dopri5) has the slope the field gives with u at those times
    from odeflow.discover import NeuralFitConfig, fit_neural_ode

    t, x, _, u, _, _ = _forced(6, n=40)
    traj = torch.zeros(len(t), dtype=torch.long)
    fit = fit_neural_ode(t, x, NeuralFitConfig(iterations=3, hidden=(8,)), inputs=InputSignal(t, u, traj, ["u"]))
    t_reg, x_reg, xdot = fit.resample(400)
    assert x_reg.shape == (400, 2) and torch.isfinite(x_reg).all()
    fd = (x_reg[1:] - x_reg[:-1]) / (t_reg[1:] - t_reg[:-1]).unsqueeze(-1)
    mid = 0.5 * (xdot[1:] + xdot[:-1])
    assert (fd - mid).abs().max() < 1e-2 * xdot.abs().max()
    # and without u the field refuses to guess it
    with pytest.raises(ValueError, match="pass u"):
        fit.field(t[0], x[:3])


def test_equally_sparse_models_within_tolerance_prefer_polynomial_terms():
    # two 2-term models 3 BIC apart: by BIC alone the one with sin(y) wins; with the Fourier columns
    # marked, the rule prefers the polynomial one (as the regression prefers a lower degree), and the
    # confidence check does not call the choice's own support a competitor
    from odeflow.discover.confidence import competing_supports
    from odeflow.discover.model_search import _sparsest_within
    from odeflow.discover.observation_fit import ObservationFit

    lib = parse_library("poly:1+fourier:1").build(["x", "y"])

    def fit(terms, bic):
        sup = np.zeros((1, len(lib)), dtype=bool)
        sup[0, [lib.terms.index(t) for t in terms]] = True
        return ObservationFit(sup, sup * 1.0, np.zeros((5, 1)), bic, np.zeros(sup.shape), 1, torch.zeros(1, 1))

    poly, wave, dense = fit(["x", "y"], -97.0), fit(["x", "sin(y)"], -100.0), fit(["1", "x", "y"], -101.0)
    fits = [poly, wave, dense]
    assert _sparsest_within(fits, 10.0) is wave
    assert _sparsest_within(fits, 10.0, extra=lib.nonpolynomial()) is poly
    assert _sparsest_within(fits, 2.0, extra=lib.nonpolynomial()) is wave  # outside tolerance: BIC decides
    assert wave in competing_supports(fits, poly, 10.0, 2.0, lib.nonpolynomial())  # 3 BIC better: still named
