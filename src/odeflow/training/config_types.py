"""Field types of the config dataclasses that say more than int/float: the command line reads
them (`odeflow.cli.config_cli` builds each `odeflow train <task>` parser from the dataclass),
type checkers see the plain type (`typing.Annotated`).

    hidden: List[PositiveInt]           -> --hidden N [N ...], each checked > 0
    mode: Literal["disc-opt", "opt-disc"] -> --mode {disc-opt,opt-disc}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated


@dataclass(frozen=True)
class Check:
    """What the command line checks of a number: 'positive' (> 0), 'non-negative' (>= 0) or
    'fraction' (0 < x <= 1)."""

    kind: str


PositiveInt = Annotated[int, Check("positive")]
PositiveFloat = Annotated[float, Check("positive")]
NonNegativeFloat = Annotated[float, Check("non-negative")]
Fraction = Annotated[float, Check("fraction")]
