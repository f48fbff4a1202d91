"""The closed-form fit of the random-feature CDE classifier (`odeflow train classify --model
random-cde`): no iterations. The data are those of every series model (tasks.sequence_classify:
official split, seeded drop, normalisation); the random CDE's features of the fit and validation
series (both: the path's PPV thresholds come from them, and the leave-one-out error of the ridge
readout picks alpha and the path block's weight, models.ridge) fit the readout; the test split
is scored once. The run folder holds config.json, best.pt (kind 'sequence-classify': the
readout, the path thresholds and the layout; the random weights come back from the seed) and
summary.json (test accuracy and loss, the leave-one-out accuracy, alpha, the path weight,
features, seconds, and `warning` when the leave-one-out or the test accuracy is at chance).
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.irregular import Series, collate
from ..models.random_cde import RandomCDEClassifier
from ..models.ridge import fit_ridge_classifier, loo_residuals, one_vs_rest
from ..training.checkpoint import save_checkpoint
from ..training.run_folder import RunFolder, check_run_folder
from .chance import chance_warning
from .classify_report import data_and_test_report
from .sequence_classify_config import SequenceClassifyConfig

CHUNK = 64  # series per feature batch (each chunk on the union of its times)


def random_cde_features(model: RandomCDEClassifier, series: List[Series], chunk: int = CHUNK) -> Tensor:
    """[N, F] float64 features of `series`, `chunk` series at a time."""
    out = []
    with torch.no_grad():
        for i in range(0, len(series), chunk):
            b = collate(series[i : i + chunk])
            out.append(model.features(b.times, b.values, b.mask))
    return torch.cat(out)


def fit_random_cde(
    cfg: SequenceClassifyConfig, out: Optional[Path], data: Any, model: RandomCDEClassifier
) -> Dict[str, Any]:
    """Fit the readout of `model` on `data` (tasks.sequence_classify's SequenceData of cfg), test
    it, write the run folder (when `out`); return summary.json's content."""
    if out is not None:
        check_run_folder(Path(out))
    start = time.perf_counter()
    train = data.train + data.val
    labels = _labels(train)
    K = len(data.classes)
    model.path.fit((b.values, b.mask) for b in (collate(train[i : i + CHUNK]) for i in range(0, len(train), CHUNK)))
    features = random_cde_features(model, train)
    fit = fit_ridge_classifier(features, labels, K, split=model.reservoir_features)
    model.set_readout(fit)
    x = (features - fit.mean) / fit.scale
    y = one_vs_rest(labels, K, x.dtype)
    loo_pred = (y - loo_residuals(x, y, fit.alpha)).argmax(-1)
    loo_accuracy = float((loo_pred == labels).double().mean())
    fit_seconds = time.perf_counter() - start
    test_labels = _labels(data.test)
    scores = fit.bias + ((random_cde_features(model, data.test) - fit.mean) / fit.scale) @ fit.weight
    pred = scores.argmax(-1)
    summary: Dict[str, Any] = dict(
        test_accuracy=float((pred == test_labels).double().mean()),
        test_loss=float(F.cross_entropy(scores, test_labels)),  # the ridge scores taken as logits
        loo_accuracy=loo_accuracy,
        alpha=fit.alpha,
        path_weight=_ratio(fit.ratio),
        features=model.num_features,
        path_features=model.path.num_features,
        units=model.units,
        readings=[list(r) for r in model.readings],
        shifts=model.shifts,
        parameters=0,
        readout_numbers=fit.weight.numel() + fit.bias.numel(),
        iterations=0,
        train_seconds=fit_seconds,
        seconds=time.perf_counter() - start,
        stopped="closed form",
        status="completed",
        budget="closed form: ridge readout, alpha by leave-one-out error",
        tested_weights="the ridge readout of the fit and validation series",
        **data_and_test_report(cfg, data, test_labels, pred),
    )
    warning = chance_warning([loo_accuracy], labels.tolist(), summary["test_accuracy"], test_labels.tolist(), K)
    if warning is not None:
        said = warning.split(": the model has not learnt")[0]
        said = said.replace("validation accuracy never", "leave-one-out accuracy never").replace(
            "validation series", "fit and validation series"
        )
        summary["warning"] = (
            f"{said}: the random features do not separate the classes; try more --windows, a larger --reservoir, "
            "or another --model"
        )
    if out is not None:
        folder = RunFolder(Path(out))
        folder.write_config(dataclasses.asdict(cfg))
        state = dict(model=model.state_dict(), kind="sequence-classify", config=dataclasses.asdict(cfg), iteration=0)
        save_checkpoint(state, folder.file("best.pt"))
        folder.write_json("summary.json", summary)
    return summary


def _ratio(ratio: Optional[float]) -> Any:
    """The path block's weight ratio for summary.json ("path only" for inf)."""
    return "path only" if ratio is not None and math.isinf(ratio) else ratio


def _labels(series: List[Series]) -> Tensor:
    if any(s.label is None for s in series):
        raise ValueError("every series needs a label for classification; one has none")
    return torch.tensor([int(s.label) for s in series])  # type: ignore[arg-type]


def describe_random_cde(s: Dict[str, Any]) -> str:
    """One line (and a warning line) of a random-cde fit."""
    line = (
        f"random-cde on {s['data']} (drop {s['drop']}, {s['drop_mode']}): {s['features']} features "
        f"({s['units']} units x {len(s['readings'])} readings x 3, and {s['path_features']} path PPV; path weight "
        f"{s['path_weight']}), ridge alpha {s['alpha']:.3g} (leave-one-out accuracy "
        f"{s['loo_accuracy']:.4f}), {s['seconds']:.1f} s; test accuracy {s['test_accuracy']:.4f}"
    )
    return line + (f"\nwarning: {s['warning']}" if "warning" in s else "")
