"""Randomized families of known systems for testing equation discovery.

Each family draws its parameters and initial state from fixed ranges; an instance is observed at
80–200 sorted uniform random times on [0, t_end] (t = 0 included) with Gaussian noise of std
noise × std(x) per variable (the convention of `discovery_systems.irregular_series`).

    lotka-volterra  x' = a x − b x y,  y' = d x y − c y          a, c ∈ [0.6, 1.4], b, d ∈ [0.3, 0.8],
                    z0 = (c/d, a/b) × U[0.2, 0.6] each (a start near the equilibrium would give a
                    tiny near-linear orbit on which only the linearization is identifiable)
    van-der-pol     x' = y,  y' = μ y − x − μ x² y              μ ∈ [0.5, 2]
    duffing         x' = y,  y' = −δ y − α x − β x³             δ ∈ [0.1, 0.3], α ∈ [0.5, 1.5], β ∈ [0.5, 1.5]
    sir             S' = −β S I,  I' = β S I − γ I,  R' = γ I    β ∈ [1, 2.5], γ ∈ [0.2, 0.5] (S + I + R = 1)
    lorenz          x' = σ(y − x), y' = x(ρ − z) − y, z' = x y − β z   σ ∈ [8, 12], ρ ∈ [24, 32], β ∈ [2, 3]

Families outside the ones the selection was developed on:

    damped-linear   x' = −γ x + ω y,  y' = −ω x − γ y                γ ∈ [0.05, 0.2], ω ∈ [1, 3] (linear)
    competitive-lv  x_i' = r_i x_i (1 − Σ_j a_ij x_j), three species  r_i ∈ [0.5, 1.5], a_ii = 1,
                    a_ij ∈ [0.2, 0.7] (i ≠ j): 3 + 9 interaction terms, a stable coexistence point
    brusselator     x' = a − (b + 1) x + x² y,  y' = b x − x² y       a ∈ [0.8, 1.2], b ∈ [2.2, 3.2] (constant term)
    fitzhugh-nagumo v' = v − v³/3 − w + I,  w' = ε (v + a − b w)       I ∈ [0.3, 0.7], ε ∈ [0.08, 0.15],
                    a ∈ [0.6, 0.8], b ∈ [0.7, 0.9] (constant terms)

A family that needs non-polynomial terms (`NONPOLYNOMIAL`, kept out of `FAMILIES` so that the
polynomial benchmark's peers are not scored on terms they cannot build; `Instance.library` names the
`--library` it needs):

    pendulum        θ' = ω,  ω' = −a sin θ − b ω                      a ∈ [0.5, 2], b ∈ [0.05, 0.15],
                    θ0 ∈ ±[1.2, 2.5] (large swings: sin θ is far from θ), library poly:1+fourier:1

Noise (`Instance.observe(kind=...)`): "additive" adds noise × std(x_i) N(0, 1) per variable;
"proportional" multiplies each value by 1 + noise N(0, 1) (the noise scales with the signal).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple

import numpy as np
import torch
from torch import Tensor

from ..solve import solve
from ..solvers.stepping import Adaptive


@dataclass
class Instance:
    system: str
    variables: Tuple[str, ...]
    params: Dict[str, float]
    z0: Tuple[float, ...]
    t_end: float
    coefficients: Dict[str, Dict[str, float]]  # equation variable -> {library term: coefficient}
    field: Callable[[Tensor, Tensor], Tensor]
    library: str = "poly"  # the `--library` whose terms hold the true model

    def truth(self, terms: List[str]) -> np.ndarray:
        """True coefficient matrix [d, len(terms)]."""
        out = np.zeros((len(self.variables), len(terms)))
        for i, v in enumerate(self.variables):
            for term, c in self.coefficients[v].items():
                out[i, terms.index(term)] = c
        return out

    def observe(self, n_obs: int, noise: float, seed: int, kind: str = "additive") -> Tuple[Tensor, Tensor, Tensor]:
        """(t [n], noisy x [n, d], clean x [n, d]) float64, irregular times with t[0] = 0; kind
        "additive" (noise × std of each variable) or "proportional" (each value × (1 + noise ε))."""
        if kind not in ("additive", "proportional"):
            raise ValueError(f"noise kind must be 'additive' or 'proportional'; got {kind!r}")
        gen = torch.Generator().manual_seed(seed)
        inner = torch.sort(torch.rand(n_obs - 1, generator=gen, dtype=torch.float64)).values * self.t_end
        t = torch.unique(torch.cat([torch.zeros(1, dtype=torch.float64), inner]))
        clean = solve(
            self.field,
            torch.tensor(self.z0, dtype=torch.float64),
            t,
            method="dopri5",
            step=Adaptive(rtol=1e-10, atol=1e-12),
        ).ys
        eps = torch.randn(clean.shape, generator=gen, dtype=torch.float64)
        size = clean.std(dim=0, keepdim=True) if kind == "additive" else clean
        return t, clean + noise * size * eps, clean


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _lotka_volterra(rng) -> Instance:
    a, c, b, d = _u(rng, 0.6, 1.4), _u(rng, 0.6, 1.4), _u(rng, 0.3, 0.8), _u(rng, 0.3, 0.8)
    # start at 20-60% of the equilibrium (c/d, a/b): a large orbit, not a near-linear ellipse
    z0 = (c / d * _u(rng, 0.2, 0.6), a / b * _u(rng, 0.2, 0.6))
    period = 2 * math.pi / math.sqrt(a * c)
    f = lambda t, z: torch.stack(
        [
            a * z[..., 0] - b * z[..., 0] * z[..., 1],  # noqa: E731
            d * z[..., 0] * z[..., 1] - c * z[..., 1],
        ],
        -1,
    )
    return Instance(
        "lotka-volterra",
        ("x", "y"),
        dict(a=a, b=b, c=c, d=d),
        z0,
        _u(rng, 1.5, 3.0) * period,
        {"x": {"x": a, "x y": -b}, "y": {"x y": d, "y": -c}},
        f,
    )


def _van_der_pol(rng) -> Instance:
    mu = _u(rng, 0.5, 2.0)
    z0 = (_u(rng, -2.5, 2.5), _u(rng, -2.5, 2.5))
    f = lambda t, z: torch.stack([z[..., 1], mu * z[..., 1] - z[..., 0] - mu * z[..., 0] ** 2 * z[..., 1]], -1)  # noqa: E731
    return Instance(
        "van-der-pol",
        ("x", "y"),
        dict(mu=mu),
        z0,
        _u(rng, 15.0, 25.0),
        {"x": {"y": 1.0}, "y": {"y": mu, "x": -1.0, "x^2 y": -mu}},
        f,
    )


def _duffing(rng) -> Instance:
    delta, alpha, beta = _u(rng, 0.1, 0.3), _u(rng, 0.5, 1.5), _u(rng, 0.5, 1.5)
    z0 = (_u(rng, 1.0, 2.5) * rng.choice([-1, 1]), _u(rng, -1.0, 1.0))
    f = lambda t, z: torch.stack([z[..., 1], -delta * z[..., 1] - alpha * z[..., 0] - beta * z[..., 0] ** 3], -1)  # noqa: E731
    return Instance(
        "duffing",
        ("x", "y"),
        dict(delta=delta, alpha=alpha, beta=beta),
        z0,
        _u(rng, 10.0, 20.0),
        {"x": {"y": 1.0}, "y": {"y": -delta, "x": -alpha, "x^3": -beta}},
        f,
    )


def _sir(rng) -> Instance:
    beta, gamma = _u(rng, 1.0, 2.5), _u(rng, 0.2, 0.5)
    i0 = _u(rng, 0.01, 0.1)
    f = lambda t, z: torch.stack(
        [
            -beta * z[..., 0] * z[..., 1],
            beta * z[..., 0] * z[..., 1] - gamma * z[..., 1],  # noqa: E731
            gamma * z[..., 1],
        ],
        -1,
    )
    return Instance(
        "sir",
        ("S", "I", "R"),
        dict(beta=beta, gamma=gamma),
        (1 - i0, i0, 0.0),
        _u(rng, 20.0, 40.0),
        {"S": {"S I": -beta}, "I": {"S I": beta, "I": -gamma}, "R": {"I": gamma}},
        f,
    )


def _lorenz(rng) -> Instance:
    sigma, rho, beta = _u(rng, 8.0, 12.0), _u(rng, 24.0, 32.0), _u(rng, 2.0, 3.0)
    z0 = (_u(rng, -10, 10), _u(rng, -10, 10), _u(rng, 15, 35))
    f = lambda t, z: torch.stack(
        [
            sigma * (z[..., 1] - z[..., 0]),
            z[..., 0] * (rho - z[..., 2]) - z[..., 1],  # noqa: E731
            z[..., 0] * z[..., 1] - beta * z[..., 2],
        ],
        -1,
    )
    return Instance(
        "lorenz",
        ("x", "y", "z"),
        dict(sigma=sigma, rho=rho, beta=beta),
        z0,
        _u(rng, 3.0, 5.0),
        {"x": {"x": -sigma, "y": sigma}, "y": {"x": rho, "x z": -1.0, "y": -1.0}, "z": {"x y": 1.0, "z": -beta}},
        f,
    )


def _damped_linear(rng) -> Instance:
    g, w = _u(rng, 0.05, 0.2), _u(rng, 1.0, 3.0)
    z0 = (_u(rng, 1.0, 3.0) * rng.choice([-1, 1]), _u(rng, -1.0, 1.0))
    f = lambda t, z: torch.stack([-g * z[..., 0] + w * z[..., 1], -w * z[..., 0] - g * z[..., 1]], -1)  # noqa: E731
    return Instance(
        "damped-linear",
        ("x", "y"),
        dict(gamma=g, omega=w),
        z0,
        _u(rng, 10.0, 20.0),
        {"x": {"x": -g, "y": w}, "y": {"x": -w, "y": -g}},
        f,
    )


def _competitive_lv(rng) -> Instance:
    r = np.array([_u(rng, 0.5, 1.5) for _ in range(3)])
    a = np.array([[1.0 if i == j else _u(rng, 0.2, 0.7) for j in range(3)] for i in range(3)])
    z0 = tuple(_u(rng, 0.05, 0.3) for _ in range(3))
    rt, at = torch.tensor(r), torch.tensor(a)
    f = lambda t, z: rt * z * (1 - z @ at.T)  # noqa: E731
    names = ("x", "y", "z")
    coefficients: Dict[str, Dict[str, float]] = {}
    for i, v in enumerate(names):
        terms = {v: float(r[i])}
        for j, u in enumerate(names):
            key = f"{v}^2" if i == j else " ".join(sorted((v, u), key=names.index))
            terms[key] = -float(r[i] * a[i, j])
        coefficients[v] = terms
    params = {f"r{i}": float(r[i]) for i in range(3)}
    params.update({f"a{i}{j}": float(a[i, j]) for i in range(3) for j in range(3) if i != j})
    return Instance("competitive-lv", names, params, z0, _u(rng, 15.0, 30.0), coefficients, f)


def _brusselator(rng) -> Instance:
    a, b = _u(rng, 0.8, 1.2), _u(rng, 2.2, 3.2)
    z0 = (_u(rng, 0.5, 2.0), _u(rng, 0.5, 3.0))
    f = lambda t, z: torch.stack(  # noqa: E731
        [a - (b + 1) * z[..., 0] + z[..., 0] ** 2 * z[..., 1], b * z[..., 0] - z[..., 0] ** 2 * z[..., 1]], -1
    )
    return Instance(
        "brusselator",
        ("x", "y"),
        dict(a=a, b=b),
        z0,
        _u(rng, 15.0, 25.0),
        {"x": {"1": a, "x": -(b + 1), "x^2 y": 1.0}, "y": {"x": b, "x^2 y": -1.0}},
        f,
    )


def _fitzhugh_nagumo(rng) -> Instance:
    cur, eps, a, b = _u(rng, 0.3, 0.7), _u(rng, 0.08, 0.15), _u(rng, 0.6, 0.8), _u(rng, 0.7, 0.9)
    z0 = (_u(rng, -2.0, 2.0), _u(rng, -0.5, 1.5))
    f = lambda t, z: torch.stack(  # noqa: E731
        [z[..., 0] - z[..., 0] ** 3 / 3 - z[..., 1] + cur, eps * (z[..., 0] + a - b * z[..., 1])], -1
    )
    return Instance(
        "fitzhugh-nagumo",
        ("v", "w"),
        dict(I=cur, epsilon=eps, a=a, b=b),
        z0,
        _u(rng, 60.0, 100.0),
        {"v": {"1": cur, "v": 1.0, "v^3": -1 / 3, "w": -1.0}, "w": {"1": eps * a, "v": eps, "w": -eps * b}},
        f,
    )


# new families go at the end: an instance's seed depends on its family's position
FAMILIES: Dict[str, Callable[[np.random.Generator], Instance]] = {
    "lotka-volterra": _lotka_volterra,
    "van-der-pol": _van_der_pol,
    "duffing": _duffing,
    "sir": _sir,
    "lorenz": _lorenz,
    "damped-linear": _damped_linear,
    "competitive-lv": _competitive_lv,
    "brusselator": _brusselator,
    "fitzhugh-nagumo": _fitzhugh_nagumo,
}


def _pendulum(rng) -> Instance:
    a, b = _u(rng, 0.5, 2.0), _u(rng, 0.05, 0.15)
    z0 = (_u(rng, 1.2, 2.5) * rng.choice([-1, 1]), _u(rng, -0.5, 0.5))
    f = lambda t, z: torch.stack([z[..., 1], -a * torch.sin(z[..., 0]) - b * z[..., 1]], -1)  # noqa: E731
    return Instance(
        "pendulum",
        ("theta", "omega"),
        dict(a=a, b=b),
        z0,
        _u(rng, 10.0, 20.0),
        {"theta": {"omega": 1.0}, "omega": {"sin(theta)": -a, "omega": -b}},
        f,
        library="poly:1+fourier:1",
    )


NONPOLYNOMIAL: Dict[str, Callable[[np.random.Generator], Instance]] = {"pendulum": _pendulum}


def random_instance(system: str, seed: int) -> Instance:
    """Instance `seed` of a family (parameters and initial state drawn from the ranges above)."""
    if system in NONPOLYNOMIAL:
        return NONPOLYNOMIAL[system](np.random.default_rng([22, seed, 100 + list(NONPOLYNOMIAL).index(system)]))
    if system not in FAMILIES:
        raise ValueError(f"unknown family {system!r}; valid: {', '.join([*FAMILIES, *NONPOLYNOMIAL])}")
    return FAMILIES[system](np.random.default_rng([22, seed, list(FAMILIES).index(system)]))
