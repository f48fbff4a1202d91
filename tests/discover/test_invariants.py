import numpy as np
import pytest

from odeflow.data.discovery_families import random_instance
from odeflow.discover.invariants import find_affine_invariants, project
from odeflow.discover.options import SelectionOptions
from odeflow.discover.selection import polynomial_library, select_model
from odeflow.discover.sindy import Equations


def _orbit(system, seed, n=300, noise=0.0):
    inst = random_instance(system, seed)
    t, x, clean = inst.observe(n, noise, seed)
    xdot = inst.field(None, clean).numpy()
    groups = np.minimum((5 * t.numpy() / t[-1].item()).astype(int), 4)
    return inst, clean.numpy(), x.numpy(), xdot, groups


@pytest.mark.parametrize("seed", [31, 32, 33])
@pytest.mark.parametrize("noise", [0.0, 0.01, 0.05])
def test_sir_conservation_found_and_r_left_out(seed, noise):
    inst, clean, noisy, xdot, _ = _orbit("sir", seed, noise=noise)
    laws = find_affine_invariants(noisy, xdot)
    assert len(laws) == 1
    law = laws[0]
    assert law.eliminated == 2  # R: the last variable with a large weight
    assert np.allclose(law.coefficients, [1, 1, 1], atol=0.02 + noise)
    assert abs(law.value - 1.0) < 0.02 + noise
    assert "S + I + R" in law.text(["S", "I", "R"]) or "R is left out" in law.text(["S", "I", "R"])


@pytest.mark.parametrize("system", ["lotka-volterra", "van-der-pol", "duffing", "lorenz"])
@pytest.mark.parametrize("seed", [34, 35])
def test_no_law_where_there_is_none(system, seed):
    inst, clean, noisy, xdot, _ = _orbit(system, seed, noise=0.05)
    assert find_affine_invariants(noisy, xdot) == []
    assert find_affine_invariants(clean) == []


def test_a_plane_reached_after_a_transient_is_not_a_law():
    # z relaxes fast onto z = x: after the transient x − z is nearly constant, but its derivative was not 0
    t = np.linspace(0, 20, 2000)
    x = np.sin(t)
    z = np.sin(t) + 3 * np.exp(-5 * t)
    y = np.cos(1.3 * t)
    states = np.stack([x, y, z], 1)
    xdot = np.gradient(states, t, axis=0)
    assert find_affine_invariants(states, xdot) == []
    assert len(find_affine_invariants(states[200:], xdot[200:])) == 1


def test_projected_perturbations_keep_the_law():
    inst, clean, _, xdot, _ = _orbit("sir", 36)
    laws = find_affine_invariants(clean, xdot)
    std = clean.std(axis=0)
    delta = project(np.random.default_rng(0).normal(size=(50, 3)), std, laws)
    moved = clean[:50] + 0.05 * std * delta
    assert np.allclose(moved.sum(axis=1), clean[:50].sum(axis=1), atol=1e-12)
    assert np.abs(delta).max() > 0.1  # not projected to nothing


@pytest.mark.parametrize("seed", [37, 38, 39])
def test_sir_model_recovered_without_the_eliminated_variable(seed):
    # exact derivatives along one epidemic: the full library is singular (1 = S + I + R), the reduced
    # one gives the true sparse model with R unused
    inst, clean, _, xdot, groups = _orbit("sir", seed)
    laws = find_affine_invariants(clean, xdot)
    sel = select_model(
        clean,
        xdot,
        inst.variables,
        groups,
        options=SelectionOptions(ensemble=0),
        exclude=[law.eliminated for law in laws],
    )
    truth = inst.truth(sel.terms)
    assert np.array_equal(sel.coefficients != 0, truth != 0)
    assert np.abs(sel.coefficients - truth).max() < 1e-4 * np.abs(truth).max()
    assert all("R" not in t.split() for j, t in enumerate(sel.terms) if sel.coefficients[:, j].any())


def test_full_library_is_singular_on_sir_data():
    inst, clean, _, _, _ = _orbit("sir", 40)
    theta, _ = polynomial_library(clean, inst.variables, 2)
    s = np.linalg.svd(theta / np.linalg.norm(theta, axis=0), compute_uv=False)
    assert s[-1] / s[0] < 1e-8


def test_exclude_is_checked_and_notes_are_written(tmp_path):
    inst, clean, _, xdot, groups = _orbit("sir", 41)
    with pytest.raises(ValueError, match="exclude"):
        select_model(clean, xdot, inst.variables, groups, options=SelectionOptions(ensemble=0), exclude=[0, 1, 2])
    eq = Equations(["S", "I", "R"], ["1", "S"], np.zeros((3, 2)), notes=["conserved along the data: S + I + R = 1"])
    eq.write(tmp_path)
    assert (tmp_path / "equations.txt").read_text().splitlines()[-1] == "# conserved along the data: S + I + R = 1"
