"""How `odeflow train ...` ends when training cannot go on: a message and an exit code, no traceback."""

from __future__ import annotations

import functools
import sys
from typing import Callable


def report_errors(run: Callable[..., int]) -> Callable[..., int]:
    """TrainingError -> exit 1 with the iteration, cause and hint; SIGTERM/SIGINT -> exit 130 after
    last.pt was saved. (Wrong settings are ValueErrors, reported by the main entry point: exit 2.)"""

    @functools.wraps(run)
    def wrapper(args) -> int:
        from ..training.errors import TrainingError, TrainingInterrupted

        try:
            return run(args)
        except TrainingError as err:
            print(f"odeflow {args.command}: {err}", file=sys.stderr)
            return 1
        except TrainingInterrupted as err:
            print(f"odeflow {args.command}: {err}", file=sys.stderr)
            return 130

    return wrapper
