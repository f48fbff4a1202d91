"""The one exception a solve raises when the numerics fail (not when the input is wrong)."""

from __future__ import annotations


class SolverError(RuntimeError):
    """The solver could not continue: step size underflow, too many steps, non-finite state.

    Carries the time reached, the last step size and a hint on what to change, so that a
    training loop can log it and stop cleanly instead of propagating NaNs.
    """

    def __init__(self, reason: str, t: float, h: float, hint: str) -> None:
        self.reason, self.t, self.h, self.hint = reason, t, h, hint
        super().__init__(f"{reason} at t={t:.6g} (step size {h:.3g}). Hint: {hint}")
