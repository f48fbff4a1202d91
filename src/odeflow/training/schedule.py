"""Coarse-to-fine training schedules (multilevel training, seed 000 §4.2.5).

A schedule is a list of stages; stage k runs from the previous stage's `until` (or 0) up to
its own `until` (exclusive) with its solver and learning rate; the last stage also covers any
iterations after its `until`. The seed's recipe: rk4 h = 0.5 (or dopri5 1e-3/1e-5) first, then
h = 0.25 (tolerances / 1e3) with the learning rate 1e-3 -> 5e-4, saving 12-15 % of the time.

Text form (CLI): stages separated by ';', each a list of key=value:
    "until=500 method=rk4 step=0.5 lr=1e-3; until=1000 method=rk4 step=0.25 lr=5e-4"
(`steps=4` instead of `step=` fixes the number of steps on [0, T] rather than their size.)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence, Union

from ..solvers.methods import METHODS
from ..solvers.stepping import Adaptive, FixedStep


def make_step(
    step_size: Optional[float] = None, steps: Optional[int] = None, rtol: float = 1e-5, atol: float = 1e-5
) -> Union[FixedStep, Adaptive]:
    """FixedStep(steps=...) if a step count is given, else FixedStep(h) if a size is, else Adaptive."""
    if steps:
        return FixedStep(steps=steps)
    return FixedStep(step_size) if step_size else Adaptive(rtol, atol)


@dataclass(frozen=True)
class Stage:
    until: int
    method: str
    step_size: Optional[float] = None  # None: adaptive with rtol/atol
    steps: Optional[int] = None  # instead of step_size: this many steps on [0, T]
    rtol: float = 1e-5
    atol: float = 1e-5
    lr: Optional[float] = None  # None: keep the current learning rate

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"schedule stage: unknown method {self.method!r}; valid: {', '.join(sorted(METHODS))}")
        if self.until < 1:
            raise ValueError(f"schedule stage: until must be >= 1; got {self.until}")
        if self.step_size is not None and not self.step_size > 0:
            raise ValueError(f"schedule stage: step must be > 0; got {self.step_size}")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"schedule stage: steps must be >= 1; got {self.steps}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"schedule stage: lr must be > 0; got {self.lr}")

    def step(self) -> Union[FixedStep, Adaptive]:
        return make_step(self.step_size, self.steps, self.rtol, self.atol)


_KEYS = {
    "until": int,
    "method": str,
    "step": float,
    "step_size": float,
    "steps": int,
    "rtol": float,
    "atol": float,
    "lr": float,
}


def parse_schedule(spec: Union[str, Sequence[Dict[str, Any]], None]) -> List[Stage]:
    """Stages from the text form or from a list of dicts (a config file); [] for none."""
    if spec is None or spec == "" or spec == []:
        return []
    items: List[Dict[str, Any]] = []
    if isinstance(spec, str):
        for chunk in filter(None, (c.strip() for c in spec.split(";"))):
            entry: Dict[str, Any] = {}
            for token in chunk.split():
                key, sep, value = token.partition("=")
                if not sep or key not in _KEYS:
                    raise ValueError(f"schedule: cannot read {token!r}; use key=value with keys {', '.join(_KEYS)}")
                entry[key] = _KEYS[key](value)
            items.append(entry)
    else:
        items = [dict(s) for s in spec]
    stages = []
    for entry in items:
        if "step" in entry:
            entry["step_size"] = entry.pop("step")
        unknown = set(entry) - set(_KEYS)
        if unknown or "until" not in entry or "method" not in entry:
            raise ValueError(f"schedule stage {entry}: needs until and method; known keys {', '.join(_KEYS)}")
        stages.append(Stage(**entry))
    if any(b.until <= a.until for a, b in zip(stages, stages[1:])):
        raise ValueError(f"schedule: 'until' must increase from stage to stage; got {[s.until for s in stages]}")
    return stages


def stage_index(stages: Sequence[Stage], iteration: int) -> int:
    """Index of the stage that runs `iteration` (the last stage beyond its end)."""
    for k, stage in enumerate(stages):
        if iteration < stage.until:
            return k
    return len(stages) - 1


def schedule_as_dicts(stages: Sequence[Stage]) -> List[Dict[str, Any]]:
    return [asdict(s) for s in stages]
