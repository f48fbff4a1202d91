"""The settings of a discovery run, as values: each stage takes its options whole.

SelectionOptions: the cross-validated regression on the field's samples (odeflow.discover.selection).
SearchOptions: the search on the observations (odeflow.discover.model_search).
DiscoverOptions: the whole pipeline (odeflow.discover.pipeline), holding the library and both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence, Tuple

from .library import LibrarySpec
from .noise_model import KINDS

MAX_TERMS = 1000  # default cap on the library size (terms per equation)


@dataclass(frozen=True)
class SelectionOptions:
    """thresholds None: the default path (0, 1e-4 … 1); relative: thresholds on unit-norm columns
    (False: pysindy's rule on raw coefficients); rel_tol, add_gain: the choice rules of
    odeflow.discover.selection; ensemble: bootstrap resamples (0: none); greedy / exhaustive:
    backward-forward paths and best subsets up to that size among the candidates."""

    thresholds: Optional[Tuple[float, ...]] = None
    relative: bool = True
    folds: int = 5
    rel_tol: float = 4.0
    ensemble: int = 50
    seed: int = 0
    greedy: bool = True
    exhaustive: int = 3
    add_gain: float = 2.0
    progress: bool = False

    @staticmethod
    def for_threshold(threshold: Optional[float], ensemble: int = 50, seed: int = 0, progress: bool = False):
        """The cross-validated path by default; pysindy's fixed STLSQ threshold on raw coefficients
        when one is given (no greedy paths, no best subsets)."""
        if threshold is None:
            return SelectionOptions(ensemble=ensemble, seed=seed, progress=progress)
        return SelectionOptions(
            thresholds=(float(threshold),),
            relative=False,
            ensemble=ensemble,
            seed=seed,
            greedy=False,
            exhaustive=0,
            progress=progress,
        )


@dataclass(frozen=True)
class SearchOptions:
    """rounds: greedy rounds per start; alternatives / pool: how many of the regression's supports /
    addable terms the moves consider (None: all); verify: moves fully fitted per round; tolerance:
    BIC units of the sparsest-within rule; ensemble: block-bootstrap resamples for inclusion; noise:
    observation-noise kinds allowed; pairs: two-term moves among that many best terms; restarts:
    other starts of the greedy search; reweight: how many times the search is run again when the
    noise model, re-estimated on the chosen model, differs from the one the search used
    (odeflow.discover.model_search); collapse: after the greedy search, moves that replace up to
    this many terms of an equation by one (odeflow.discover.collapse; 0 or 1: none)."""

    rounds: int = 20
    alternatives: Optional[int] = None
    pool: Optional[int] = None
    verify: int = 3
    tolerance: float = 10.0
    ensemble: int = 50
    seed: int = 0
    noise: Tuple[str, ...] = KINDS
    pairs: int = 6
    restarts: int = 2
    progress: bool = False
    reweight: int = 1
    collapse: int = 3


@dataclass(frozen=True)
class DiscoverOptions:
    """The pipeline's settings. library: the candidate terms (odeflow.discover.library); threshold
    None: the cross-validated selection, a number: pysindy's fixed STLSQ rule (and no refinement);
    n_samples, nearby, spread: the field's samples (odeflow.discover.neural_fit); method 'neural' or
    'weak'; invariants: look for affine conservation laws; refine: the search on the observations;
    max_terms: refuse a larger library before any work; ensemble, seed: for both stages."""

    library: LibrarySpec = field(default_factory=LibrarySpec)
    threshold: Optional[float] = None
    n_samples: int = 1000
    nearby: int = 4
    spread: float = 0.05
    ensemble: int = 50
    seed: int = 0
    method: str = "neural"
    invariants: bool = True
    refine: bool = True
    max_terms: int = MAX_TERMS
    progress: bool = False
    search: Optional[SearchOptions] = None  # None: SearchOptions with this ensemble, seed and progress
    bootstrap: int = 30  # parametric-bootstrap refits widening the ± intervals (odeflow.discover.intervals)

    def __post_init__(self) -> None:
        if self.method not in ("neural", "weak"):
            raise ValueError(f"method must be 'neural' or 'weak'; got {self.method!r}")
        if self.threshold is not None and not self.threshold >= 0:
            raise ValueError(f"need threshold >= 0; got {self.threshold}")
        if self.n_samples < 3 or self.nearby < 0 or self.spread < 0 or self.ensemble < 0 or self.max_terms < 1:
            raise ValueError(
                f"need n_samples >= 3, nearby >= 0, spread >= 0, ensemble >= 0, max_terms >= 1; got "
                f"{self.n_samples}, {self.nearby}, {self.spread}, {self.ensemble}, {self.max_terms}"
            )
        if self.bootstrap < 0 or self.bootstrap == 1:
            raise ValueError(f"bootstrap is the number of refits: 0 (none) or >= 2; got {self.bootstrap}")

    @property
    def degrees(self) -> Sequence[int]:
        return self.library.degrees

    @property
    def refines(self) -> bool:
        """The search on the observations runs: method neural, no fixed threshold, refine on."""
        return self.refine and self.method == "neural" and self.threshold is None

    def selection(self) -> SelectionOptions:
        # with the search, inclusion comes from the search on the observations
        ensemble = 0 if self.refines else self.ensemble
        return SelectionOptions.for_threshold(self.threshold, ensemble, self.seed, self.progress)

    def search_options(self) -> SearchOptions:
        if self.search is not None:
            return self.search
        return SearchOptions(ensemble=self.ensemble, seed=self.seed, progress=self.progress)


DEFAULT_SELECTION = SelectionOptions()
DEFAULT_SEARCH = SearchOptions()
