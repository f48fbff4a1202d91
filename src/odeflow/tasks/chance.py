"""Is a classifier better than chance? Chance = the accuracy of always answering the most common
class of the set evaluated (max_c n_c / n); a classifier that never beats it on validation has
learnt nothing usable, and one at or below it on the test set says so too.
"""

from __future__ import annotations

from collections import Counter
from typing import List, Optional, Sequence


def majority_share(labels: Sequence[int]) -> float:
    """max_c n_c / n: the accuracy of always predicting the most common class."""
    if len(labels) == 0:
        raise ValueError("majority_share of an empty label list")
    return max(Counter(labels).values()) / len(labels)


def chance_warning(
    val_accuracies: Sequence[float],
    val_labels: Sequence[int],
    test_accuracy: float,
    test_labels: Sequence[int],
    n_classes: int,
) -> Optional[str]:
    """A warning when the best validation accuracy never exceeded the validation set's majority
    share, or the test accuracy is at or below the test set's; None otherwise."""
    problems: List[str] = []
    if val_accuracies and val_labels:
        chance, best = majority_share(val_labels), max(val_accuracies)
        if best <= chance + 1e-9:
            problems.append(
                f"the validation accuracy never rose above chance ({best:.3f} <= {chance:.3f}, the "
                f"majority class's share of {len(val_labels)} validation series)"
            )
    if test_labels:
        chance = majority_share(test_labels)
        if test_accuracy <= chance + 1e-9:
            problems.append(f"the test accuracy {test_accuracy:.3f} is at or below chance ({chance:.3f})")
    if not problems:
        return None
    return (
        "; ".join(problems) + f" ({n_classes} classes): the model has not learnt to classify; try more "
        "iterations (--iterations N), another --lr, or another --model"
    )
