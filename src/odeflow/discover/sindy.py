"""Sparse identification of nonlinear dynamics (SINDy; Brunton et al. 2016) through pysindy.

dz/dt is regressed onto a polynomial library Θ(z) = [1, x, y, x², x y, ...] with sequentially
thresholded least squares (STLSQ): coefficients below ``threshold`` are set to zero and the rest
refitted. Library terms are named from the variable names ('x', 'y', 'x y', 'x^2').
pysindy is optional: pip install 'odeflow[sindy]'.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np
from torch import Tensor


def import_pysindy():
    try:
        import pysindy
    except ImportError:
        raise ImportError(
            "equation discovery needs pysindy: pip install 'odeflow[sindy]' (or pip install pysindy)"
        ) from None
    return pysindy


@dataclass
class Equations:
    """coefficients[i, j]: coefficient of library term terms[j] in d(variables[i])/dt."""

    variables: List[str]
    terms: List[str]
    coefficients: np.ndarray
    inclusion: Optional[np.ndarray] = None  # [d, m] bootstrap inclusion probability of each term
    lower: Optional[np.ndarray] = None  # [d, m] 2.5% bootstrap quantile
    upper: Optional[np.ndarray] = None  # [d, m] 97.5% bootstrap quantile
    notes: List[str] = field(default_factory=list)  # e.g. conservation laws; '# '-lines after the equations

    def halfwidth(self) -> Optional[np.ndarray]:
        """± of each coefficient: the larger distance from it to the bootstrap 2.5% / 97.5% quantiles."""
        if self.lower is None or self.upper is None:
            return None
        return np.maximum(np.abs(self.upper - self.coefficients), np.abs(self.coefficients - self.lower))

    def lines(self, precision: int = 4, intervals: bool = True) -> List[str]:
        """'dx/dt = 1.0000 x - 0.5000 x y', one string per equation; with bootstrap intervals (and
        intervals=True) each coefficient reads '(1.0000 ± 0.0021) x'."""
        out = []
        pm = self.halfwidth() if intervals else None
        for i, (var, row) in enumerate(zip(self.variables, self.coefficients)):
            parts = []
            for j, (c, term) in enumerate(zip(row, self.terms)):
                if c == 0:
                    continue
                num = f"{abs(c):.{precision}f}"
                if pm is not None:
                    num = f"({num} ± {pm[i, j]:.{precision}f})"
                mag = num + ("" if term == "1" else f" {term}")
                parts.append(("- " if c < 0 else "+ ") + mag)
            rhs = " ".join(parts) if parts else "0"
            rhs = rhs[2:] if rhs.startswith("+ ") else ("-" + rhs[2:] if rhs.startswith("- ") else rhs)
            out.append(f"d{var}/dt = {rhs}")
        return out

    def coefficient(self, variable: str, term: str) -> float:
        return float(self.coefficients[self.variables.index(variable), self.terms.index(term)])

    def write(self, folder: Union[str, Path]) -> None:
        """equations.txt (one equation per line, then any notes as '# ' lines), coefficients.csv (one row per equation) and, with
        bootstrap results, inclusion.csv (same layout: each term's inclusion probability)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "equations.txt").write_text("\n".join(self.lines() + [f"# {note}" for note in self.notes]) + "\n")
        with (folder / "coefficients.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["equation", *self.terms])
            for var, row in zip(self.variables, self.coefficients):
                w.writerow([f"d{var}/dt", *(repr(float(c)) for c in row)])
        if self.inclusion is not None:
            with (folder / "inclusion.csv").open("w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["equation", *self.terms])
                for var, row in zip(self.variables, self.inclusion):
                    w.writerow([f"d{var}/dt", *(f"{float(p):.3f}" for p in row)])


def fit_sindy(
    t: Union[Tensor, np.ndarray],
    x: Union[Tensor, np.ndarray],
    variables: Sequence[str],
    x_dot: Optional[Union[Tensor, np.ndarray]] = None,
    degree: int = 3,
    threshold: float = 0.05,
) -> Equations:
    """SINDy on samples x [n, d] at times t [n] (regular or not); derivatives from x_dot [n, d] when
    given, else pysindy's finite differences (which follow irregular times)."""
    ps = import_pysindy()
    t_np = np.asarray(t.detach().cpu() if isinstance(t, Tensor) else t, dtype=np.float64)
    x_np = np.asarray(x.detach().cpu() if isinstance(x, Tensor) else x, dtype=np.float64)
    if x_np.ndim != 2 or t_np.ndim != 1 or x_np.shape[0] != t_np.shape[0] or x_np.shape[1] != len(variables):
        raise ValueError(
            f"need t [n], x [n, d] and d variable names; got t {t_np.shape}, x {x_np.shape}, names {list(variables)}"
        )
    bad = [v for v in variables if not v or any(ch.isspace() or ch == "^" for ch in v)]
    if bad:
        raise ValueError(f"variable names {bad} would make ambiguous library terms; use names without spaces or '^'")
    if degree < 1 or threshold < 0:
        raise ValueError(f"need degree >= 1 and threshold >= 0; got degree={degree}, threshold={threshold}")
    xd = None
    if x_dot is not None:
        xd = np.asarray(x_dot.detach().cpu() if isinstance(x_dot, Tensor) else x_dot, dtype=np.float64)
        if xd.shape != x_np.shape:
            raise ValueError(f"x_dot must match x {x_np.shape}; got {xd.shape}")
    model = ps.SINDy(optimizer=ps.STLSQ(threshold=threshold), feature_library=ps.PolynomialLibrary(degree=degree))
    model.fit(x_np, t=t_np, x_dot=xd, feature_names=list(variables))
    return Equations(
        list(variables), list(model.get_feature_names()), np.asarray(model.coefficients(), dtype=np.float64)
    )
