"""A stratified held-out split: each class keeps its share of the training data.

k = round(fraction n) cases are held out (at least 1, at most n - 1), spread over the classes in
proportion to their counts (largest remainders first); a class never gives up its last case,
and every class with at least two cases gives at least one when k allows.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
from torch import Tensor

from .classification import held_out_count


def stratified_holdout(labels: Sequence[int], fraction: float, seed: int = 0) -> Tuple[Tensor, Tensor]:
    """(keep, held out) index tensors of range(len(labels)), ``fraction`` held out per class."""
    if not 0 < fraction < 1:
        raise ValueError(f"held-out fraction must be in (0, 1); got {fraction}")
    n = len(labels)
    if n < 2:
        raise ValueError(f"need at least 2 samples to hold some out; got {n}")
    k = held_out_count(n, fraction)
    classes = sorted(set(labels))
    members: List[List[int]] = [[i for i, y in enumerate(labels) if y == c] for c in classes]
    counts = [len(m) for m in members]
    share = [k * c / n for c in counts]
    take = [min(int(s), c - 1) for s, c in zip(share, counts)]
    # classes that can still give one: those with none taken first, then by largest remainder
    order = sorted(range(len(classes)), key=lambda j: (take[j] > 0, -(share[j] - int(share[j]))))
    while sum(take) < k:
        progressed = False
        for j in order:
            if sum(take) < k and take[j] < counts[j] - 1:
                take[j] += 1
                progressed = True
        if not progressed:
            break
    g = torch.Generator().manual_seed(seed)
    held: List[int] = []
    for m, t in zip(members, take):
        perm = torch.randperm(len(m), generator=g)[:t].tolist()
        held.extend(m[p] for p in perm)
    if not held:  # every class has a single case: hold one out anyway
        held = [int(torch.randint(n, (1,), generator=g))]
    held_set = set(held)
    keep = [i for i in range(n) if i not in held_set]
    return torch.tensor(keep, dtype=torch.long), torch.tensor(sorted(held), dtype=torch.long)
