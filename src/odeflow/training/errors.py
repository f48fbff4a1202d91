"""Why a training run stopped early, in words a user can act on."""

from __future__ import annotations


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss or gradient, solver failure). Carries the
    iteration, the cause and a hint; best.pt and last.pt keep the last finite state."""

    def __init__(self, iteration: int, cause: str, hint: str) -> None:
        self.iteration, self.cause, self.hint = iteration, cause, hint
        super().__init__(f"training stopped at iteration {iteration}: {cause}. Hint: {hint}")


class TrainingInterrupted(RuntimeError):
    """SIGTERM/SIGINT: last.pt was written after the last complete iteration."""

    def __init__(self, signal_name: str, iteration: int, folder: str) -> None:
        self.iteration = iteration
        super().__init__(
            f"{signal_name} received: stopped after iteration {iteration}; last.pt saved in {folder}. "
            f"Continue with --resume {folder}"
        )


NONFINITE_HINT = (
    "lower the learning rate (--lr), use a smaller step (--step-size) or tighter tolerances, "
    "add regularization (e.g. --kinetic 0.01 --jacobian 0.01), or clip gradients (--grad-clip)"
)
