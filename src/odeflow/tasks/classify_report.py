"""What a series classifier's summary.json says about its data and its test predictions, the same
for the trained models (tasks.sequence_classify) and the closed-form fit (tasks.sequence_random)."""

from __future__ import annotations

from typing import Any, Dict, Sequence

import torch
from torch import Tensor


def data_and_test_report(cfg: Any, data: Any, labels: Tensor, pred: Tensor) -> Dict[str, Any]:
    """The model and data settings, the split sizes and the test confusion matrix
    (rows: true class, columns: predicted) of one run."""
    classes: Sequence[str] = data.classes
    counts = torch.zeros(len(classes), len(classes), dtype=torch.long)
    for t, p in zip(labels.tolist(), pred.tolist()):
        counts[t, p] += 1
    return dict(
        model=cfg.model,
        data=cfg.data,
        drop=cfg.drop,
        drop_mode=cfg.drop_mode,
        classes=classes,
        n_train=len(data.train),
        n_val=len(data.val),
        n_test=len(data.test),
        test_confusion=counts.tolist(),
    )
