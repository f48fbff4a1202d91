"""Is a classifier better than chance? Chance = the accuracy of always answering the most common
class of the set evaluated (max_c n_c / n); a classifier that never beats it on validation has
learnt nothing usable. On the test set the question is whether k correct of n could come from a
guesser right with probability chance: the one-sided binomial test,

    p = P(X >= k),  X ~ Binomial(n, chance),

warns at p > 0.05 (e.g. 70 of 175 against chance 0.394 gives p = 0.47: not evidence of learning).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import List, Optional, Sequence

LEVEL = 0.05  # the test's significance level


def majority_share(labels: Sequence[int]) -> float:
    """max_c n_c / n: the accuracy of always predicting the most common class."""
    if len(labels) == 0:
        raise ValueError("majority_share of an empty label list")
    return max(Counter(labels).values()) / len(labels)


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed exactly in log space."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0 or p >= 1.0:
        return float(p >= 1.0)
    logs = [
        math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1) + j * math.log(p) + (n - j) * math.log1p(-p)
        for j in range(k, n + 1)
    ]
    top = max(logs)
    return min(1.0, math.exp(top) * sum(math.exp(v - top) for v in logs))


def chance_warning(
    val_accuracies: Sequence[float],
    val_labels: Sequence[int],
    test_accuracy: float,
    test_labels: Sequence[int],
    n_classes: int,
) -> Optional[str]:
    """A warning when the best validation accuracy never exceeded the validation set's majority
    share, or the test accuracy is not significantly above the test set's (module docstring);
    None otherwise."""
    problems: List[str] = []
    if val_accuracies and val_labels:
        chance, best = majority_share(val_labels), max(val_accuracies)
        if best <= chance + 1e-9:
            problems.append(
                f"the validation accuracy never rose above chance ({best:.3f} <= {chance:.3f}, the "
                f"majority class's share of {len(val_labels)} validation series)"
            )
    if test_labels:
        chance, n = majority_share(test_labels), len(test_labels)
        if test_accuracy <= chance + 1e-9:
            problems.append(f"the test accuracy {test_accuracy:.3f} is at or below chance ({chance:.3f})")
        else:
            p = binomial_tail(round(test_accuracy * n), n, chance)
            if p > LEVEL:
                problems.append(
                    f"the test accuracy {test_accuracy:.3f} is not distinguishable from chance ({chance:.3f}): "
                    f"one-sided binomial p = {p:.2f} on {n} test series"
                )
    if not problems:
        return None
    return (
        "; ".join(problems) + f" ({n_classes} classes): the model has not learnt to classify; try more "
        "iterations (--iterations N), another --lr, or another --model"
    )
