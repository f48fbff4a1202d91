"""The SINDy library Θ(x, u): which candidate terms the equations may use.

Terms, in this column order (Brunton, Proctor & Kutz 2016, SINDy; inputs as in SINDYc, Brunton,
Proctor & Kutz 2016, "Sparse identification of nonlinear dynamics with control"):

  * polynomials: every monomial of degree 0..D in the library variables, pysindy's order and names
    ('1', 'x', 'y', 'x^2', 'x y', ...);
  * Fourier terms: sin(k v), cos(k v) for every library variable v and k = 1..n, named 'sin(x)',
    'cos(x)', 'sin(2*x)', ...;
  * user terms: (name, function) pairs, the function taking the library variables as a tensor
    [N, d + p] (states, then inputs, in column order) and returning [N].

The library variables are the states x (predicted) followed by the inputs u (control columns: in
the library, never predicted). `--library` strings: 'poly' (degrees 1..3 compete, or `--degree`),
'poly:D', 'fourier:n', joined by '+' ('poly:2+fourier:1'); without 'poly' no polynomial column is
built, not even the constant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations_with_replacement
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

DEFAULT_DEGREES = (1, 2, 3)


def polynomial_terms(variables: Sequence[str], degree: int) -> List[Tuple[int, ...]]:
    """Exponent tuples of every monomial of total degree 0..degree, pysindy's order."""
    d = len(variables)
    out: List[Tuple[int, ...]] = []
    for deg in range(degree + 1):
        for combo in combinations_with_replacement(range(d), deg):
            powers = [0] * d
            for i in combo:
                powers[i] += 1
            out.append(tuple(powers))
    return out


def term_name(variables: Sequence[str], powers: Sequence[int]) -> str:
    parts = [v if p == 1 else f"{v}^{p}" for v, p in zip(variables, powers) if p > 0]
    return " ".join(parts) if parts else "1"


@dataclass(frozen=True)
class UserTerm:
    """A library column given as a Python callable: fn(v [N, d + p]) -> [N] (torch, float64)."""

    name: str
    fn: Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class LibrarySpec:
    """What the library holds. degree None: degrees 1..3 compete (the polynomial part of every level
    has degree <= its level; Fourier and user terms are in every level). polynomial False: no
    polynomial column at all (a single level, 0)."""

    degree: Optional[int] = None
    polynomial: bool = True
    fourier: int = 0
    custom: Tuple[UserTerm, ...] = ()

    def __post_init__(self) -> None:
        if self.degree is not None and self.degree < 0:
            raise ValueError(f"the polynomial degree must be >= 0; got {self.degree}")
        if self.fourier < 0:
            raise ValueError(f"the Fourier order must be >= 0; got {self.fourier}")
        if not self.polynomial and not self.fourier and not self.custom:
            raise ValueError("the library is empty: give 'poly', 'fourier:n' or user terms")
        names = [term.name for term in self.custom]
        bad = [n for n in names if not n or not isinstance(n, str)]
        if bad or len(set(names)) != len(names):
            raise ValueError(f"user terms need distinct non-empty names; got {names}")
        if any(not callable(term.fn) for term in self.custom):
            raise TypeError("each user term's fn must be callable: fn(v [N, d + p]) -> [N]")

    @property
    def degrees(self) -> Tuple[int, ...]:
        """The competing polynomial degrees (levels of the selection)."""
        if not self.polynomial:
            return (0,)
        return (self.degree,) if self.degree is not None else DEFAULT_DEGREES

    def size(self, n_library_variables: int) -> int:
        """Terms per equation at the top degree."""
        top = max(self.degrees)
        poly = math.comb(n_library_variables + top, top) if self.polynomial else 0
        return poly + 2 * self.fourier * n_library_variables + len(self.custom)

    def describe(self, n_library_variables: int) -> str:
        parts = []
        if self.polynomial:
            parts.append(
                f"polynomials of degree <= {max(self.degrees)}"
                + ("" if self.degree is not None else " (degrees 1-3 compete)")
            )
        if self.fourier:
            parts.append(f"sin/cos of k·v for k = 1..{self.fourier}")
        if self.custom:
            parts.append(f"{len(self.custom)} user term(s)")
        return f"{' + '.join(parts)} in {n_library_variables} variables, {self.size(n_library_variables):,} terms"

    def build(self, variables: Sequence[str], inputs: Sequence[str] = ()) -> Library:
        return Library(list(variables), list(inputs), self)


def parse_library(text: str, degree: Optional[int] = None) -> LibrarySpec:
    """'poly', 'poly:2', 'fourier:1', 'poly:2+fourier:1' -> LibrarySpec; `degree` (--degree) fills a
    bare 'poly' and must agree with 'poly:D'. ValueError naming the bad part and the syntax."""
    syntax = "use 'poly', 'poly:D', 'fourier:n' joined by '+', e.g. 'poly:2+fourier:1'"
    parts = [p.strip().lower() for p in str(text).split("+")]
    poly, fourier = False, 0
    deg = degree
    for part in parts:
        name, _, arg = part.partition(":")
        if name not in ("poly", "fourier") or (name == "fourier" and not arg) or (arg and not arg.isdigit()):
            raise ValueError(f"--library {text!r}: cannot read {part!r}; {syntax}")
        if name == "poly":
            if poly:
                raise ValueError(f"--library {text!r}: 'poly' given twice; {syntax}")
            poly = True
            if arg:
                if degree is not None and int(arg) != degree:
                    raise ValueError(f"--library {text!r} says degree {arg} but --degree is {degree}; give one")
                deg = int(arg)
        else:
            if fourier:
                raise ValueError(f"--library {text!r}: 'fourier' given twice; {syntax}")
            fourier = int(arg)
            if fourier < 1:
                raise ValueError(f"--library {text!r}: the Fourier order must be >= 1")
    if not poly and degree is not None:
        raise ValueError(f"--degree {degree} needs a polynomial part: add 'poly' to --library {text!r}")
    return LibrarySpec(degree=deg if poly else None, polynomial=poly, fourier=fourier)


class Library:
    """Θ over the library variables (states, then inputs) at the top degree of `spec`."""

    def __init__(self, variables: List[str], inputs: List[str], spec: LibrarySpec) -> None:
        names = variables + inputs
        banned = "^()*" if spec.fourier else "^"  # Fourier names read 'sin(2*x)'
        bad = [v for v in names if not v or any(ch.isspace() or ch in banned for ch in v)]
        if bad:
            shown = ", ".join(repr(ch) for ch in banned)
            raise ValueError(
                f"variable names {bad} would make ambiguous library terms; use names without spaces or {shown}"
            )
        if len(set(names)) != len(names):
            raise ValueError(f"state and input names must be distinct; got {names}")
        self.variables, self.inputs, self.spec = variables, inputs, spec
        self.powers: List[Tuple[int, ...]] = polynomial_terms(names, max(spec.degrees)) if spec.polynomial else []
        # ("sin" | "cos", variable index, k) per Fourier column, in pysindy's order
        self.waves = [(f, i, k) for i in range(len(names)) for k in range(1, spec.fourier + 1) for f in ("sin", "cos")]
        self.custom = list(spec.custom)
        waves = [f"{f}({v})" if k == 1 else f"{f}({k}*{v})" for f, i, k in self.waves for v in [names[i]]]
        self.terms: List[str] = [term_name(names, p) for p in self.powers] + waves + [c.name for c in self.custom]
        clash = {t for t in self.terms if self.terms.count(t) > 1}
        if clash:
            raise ValueError(f"user term names {sorted(clash)} repeat other library terms; rename them")

    def __len__(self) -> int:
        return len(self.terms)

    def degree_of(self) -> np.ndarray:
        """[m] polynomial degree of each column (0 for Fourier and user terms)."""
        extra = len(self.waves) + len(self.custom)
        return np.array([sum(p) for p in self.powers] + [0] * extra, dtype=np.int64)

    def nonpolynomial(self) -> np.ndarray:
        """[m] True for Fourier and user columns: among equally sparse models within the BIC
        tolerance, the one with fewer of these is preferred (as a lower degree is in the regression)."""
        return np.arange(len(self.terms)) >= len(self.powers)

    def levels(self, degrees: Optional[Sequence[int]] = None) -> Dict[int, np.ndarray]:
        """degree -> mask of the columns in that degree's library (Fourier and user terms in all)."""
        deg = self.degree_of()
        poly = np.arange(len(self.terms)) < len(self.powers)
        return {int(k): ~poly | (deg <= k) for k in (degrees or self.spec.degrees)}

    def columns_without(self, eliminated: Sequence[int]) -> np.ndarray:
        """[m] columns that use none of the eliminated state variables (user terms are kept: what
        they use is not known)."""
        poly = [all(p[j] == 0 for j in eliminated) for p in self.powers]
        waves = [i not in eliminated for _, i, _ in self.waves]
        return np.array(poly + waves + [True] * len(self.custom), dtype=bool)

    def evaluate(self, v: Tensor, cols: Optional[np.ndarray] = None) -> Tensor:
        """Θ(v) [N, len(cols)] (default every column) for library variables v [N, d + p]."""
        cols = np.arange(len(self.terms)) if cols is None else np.asarray(cols, dtype=np.int64)
        out = []
        n_poly, n_wave = len(self.powers), len(self.waves)
        poly = cols[cols < n_poly]
        if len(poly):
            out.append(monomials(v, torch.tensor(np.asarray(self.powers)[poly], dtype=torch.long)))
        for c in cols[cols >= n_poly].tolist():
            if c < n_poly + n_wave:
                f, i, k = self.waves[c - n_poly]
                out.append((torch.sin if f == "sin" else torch.cos)(k * v[:, i]).unsqueeze(-1))
            else:
                out.append(self._user(self.custom[c - n_poly - n_wave], v).unsqueeze(-1))
        return torch.cat(out, dim=-1) if out else v.new_zeros(v.shape[0], 0)

    @staticmethod
    def _user(term: UserTerm, v: Tensor) -> Tensor:
        got = term.fn(v)
        if not isinstance(got, Tensor) or got.shape != v.shape[:1]:
            shape = tuple(got.shape) if isinstance(got, Tensor) else type(got).__name__
            raise ValueError(
                f"user term {term.name!r} must return a tensor [N] for v [N, d + p]; got {shape} "
                f"for v {tuple(v.shape)} (use torch functions of v's columns, e.g. torch.tanh(v[:, 0]))"
            )
        return got.to(v.dtype)

    def numpy(self, x: np.ndarray, u: Optional[np.ndarray] = None) -> np.ndarray:
        """Θ [n, m] for states x [n, d] and inputs u [n, p] (numpy, float64)."""
        v = np.asarray(x, dtype=np.float64)
        if self.inputs:
            if u is None or np.shape(u) != (v.shape[0], len(self.inputs)):
                raise ValueError(f"the library uses inputs {self.inputs}; give u [{v.shape[0]}, {len(self.inputs)}]")
            v = np.concatenate([v, np.asarray(u, dtype=np.float64)], axis=1)
        with torch.no_grad():
            theta = self.evaluate(torch.as_tensor(v)).numpy()
        if not np.isfinite(theta).all():
            bad = sorted({self.terms[j] for j in np.flatnonzero(~np.isfinite(theta).all(axis=0))})
            raise ValueError(f"library terms {bad} are not finite on the data; drop or rescale them")
        return theta


def as_library(powers_or_library) -> Library:
    """A Library as given, or a polynomial one from exponent tuples [m][d + p] (names x0, x1, ...)."""
    if isinstance(powers_or_library, Library):
        return powers_or_library
    powers = [tuple(int(e) for e in p) for p in powers_or_library]
    d = len(powers[0]) if powers else 0
    lib = Library([f"x{i}" for i in range(d)], [], LibrarySpec(degree=max((sum(p) for p in powers), default=0)))
    lib.powers = powers  # exactly the columns given (a subset or another order is allowed)
    lib.terms = [term_name(lib.variables, p) for p in powers]
    return lib


def monomials(x: Tensor, powers: Tensor) -> Tensor:
    """Θ(x) [N, m] for x [N, d] and exponents powers [m, d] (integers)."""
    out = x.new_ones(x.shape[0], powers.shape[0])
    for i in range(powers.shape[1]):
        top = int(powers[:, i].max()) if powers.shape[0] else 0
        if top == 0:
            continue
        pw = torch.stack([x[:, i] ** e for e in range(top + 1)], dim=-1)  # [N, top + 1]
        out = out * pw[:, powers[:, i]]
    return out
