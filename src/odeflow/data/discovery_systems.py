"""Known systems observed at irregular times with noise, for equation discovery (seed 002).

    lotka-volterra:  x' = a x − b x y,  y' = d x y − c y      (a, b, c, d) = (1, 0.5, 1, 0.5), z0 = (1, 1)
    cubic:           x' = μ x − x³                            μ = 1, x0 = 0.1 (grows to √μ)

`irregular_series` draws sorted uniform observation times on [0, t_end] (t = 0 included), solves
the system there with dopri5 at rtol 1e-10 and adds Gaussian noise of std noise·std(x) per
variable. `write_series_csv` writes the format `odeflow discover` reads: a time column, then one
column per variable.
"""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple, Union

import torch
from torch import Tensor

from ..solve import solve
from ..solvers.stepping import Adaptive


@dataclass(frozen=True)
class KnownSystem:
    name: str
    variables: Tuple[str, ...]
    z0: Tuple[float, ...]
    t_end: float
    field: Callable[[Tensor, Tensor], Tensor]
    # true coefficients: equation (variable) -> {library term: coefficient}
    coefficients: Dict[str, Dict[str, float]] = dataclasses.field(default_factory=dict)  # not `field`: shadowed above


def _lotka_volterra(t: Tensor, z: Tensor) -> Tensor:
    x, y = z[..., 0], z[..., 1]
    return torch.stack([1.0 * x - 0.5 * x * y, 0.5 * x * y - 1.0 * y], dim=-1)


def _cubic(t: Tensor, z: Tensor) -> Tensor:
    return 1.0 * z - z**3


KNOWN_SYSTEMS: Dict[str, KnownSystem] = {
    "lotka-volterra": KnownSystem(
        "lotka-volterra",
        ("x", "y"),
        (1.0, 1.0),
        15.0,
        _lotka_volterra,
        {"x": {"x": 1.0, "x y": -0.5}, "y": {"x y": 0.5, "y": -1.0}},
    ),
    "cubic": KnownSystem("cubic", ("x",), (0.1,), 8.0, _cubic, {"x": {"x": 1.0, "x^3": -1.0}}),
}


def get_known_system(name: str) -> KnownSystem:
    if name not in KNOWN_SYSTEMS:
        raise ValueError(f"unknown system {name!r}; valid: {', '.join(sorted(KNOWN_SYSTEMS))}")
    return KNOWN_SYSTEMS[name]


def solve_known(name: str, t: Tensor, z0: Union[Sequence[float], None] = None) -> Tensor:
    """Clean trajectory [len(t), d] (float64)."""
    sys_ = get_known_system(name)
    y0 = torch.tensor(sys_.z0 if z0 is None else list(z0), dtype=torch.float64)
    return solve(sys_.field, y0, t.to(torch.float64), method="dopri5", step=Adaptive(rtol=1e-10, atol=1e-12)).ys


def irregular_series(
    name: str, n_obs: int = 100, noise: float = 0.02, seed: int = 0, t_end: Union[float, None] = None
) -> Tuple[Tensor, Tensor, Tensor]:
    """(t [n_obs], noisy x [n_obs, d], clean x [n_obs, d]), float64, times irregular with t[0] = 0."""
    sys_ = get_known_system(name)
    if n_obs < 3:
        raise ValueError(f"n_obs must be >= 3; got {n_obs}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0 (a fraction of each variable's std); got {noise}")
    t_end = sys_.t_end if t_end is None else t_end
    gen = torch.Generator().manual_seed(seed)
    inner = torch.sort(torch.rand(n_obs - 1, generator=gen, dtype=torch.float64)).values * t_end
    t = torch.cat([torch.zeros(1, dtype=torch.float64), inner])
    t = torch.unique(t)  # drop exact ties (probability zero, but keep times strictly increasing)
    clean = solve_known(name, t)
    scale = clean.std(dim=0, keepdim=True)
    noisy = clean + noise * scale * torch.randn(clean.shape, generator=gen, dtype=torch.float64)
    return t, noisy, clean


def write_series_csv(path: Union[str, Path], t: Tensor, x: Tensor, names: Sequence[str], time_name: str = "t") -> Path:
    """A CSV with a header (time, then one column per variable) and one row per observation."""
    if x.dim() != 2 or x.shape[0] != t.shape[0] or x.shape[1] != len(names):
        raise ValueError(
            f"need t [n], x [n, d] and d names; got t {tuple(t.shape)}, x {tuple(x.shape)}, {len(names)} names"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([time_name, *names])
        for ti, row in zip(t.tolist(), x.tolist()):
            w.writerow([repr(float(ti)), *(repr(float(v)) for v in row)])
    return path


def true_coefficient_rows(name: str, terms: List[str]) -> Tensor:
    """The true coefficient matrix [d, len(terms)] of a known system in a given library."""
    sys_ = get_known_system(name)
    out = torch.zeros(len(sys_.variables), len(terms), dtype=torch.float64)
    for i, var in enumerate(sys_.variables):
        for term, c in sys_.coefficients[var].items():
            if term not in terms:
                raise ValueError(f"term {term!r} of {name} is not in the library {terms}")
            out[i, terms.index(term)] = c
    return out
