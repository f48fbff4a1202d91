"""`odeflow evaluate RUN` for sequence-classify runs (`odeflow train classify --data
gunpoint|uea:NAME|PATH.csv --model ...`): test accuracy, cross-entropy and confusion
matrix of the saved model on the run's test split, rebuilt from the stored config (same data,
same seeded drop of observations, same normalisation)."""

from __future__ import annotations

import argparse
import json

from .solver_options import chosen_solver


def evaluate_sequence_classify(args: argparse.Namespace, state) -> int:
    from ..tasks.sequence_classify import evaluate_sequences, load_sequence_classifier, load_sequence_data

    if chosen_solver(args) is not None:
        raise ValueError(
            "--method/--step-size/--rtol/--atol do not apply to sequence-classify runs: they are "
            "evaluated with the fixed steps they were trained with (drop these options)"
        )
    model, cfg = load_sequence_classifier(args.checkpoint)
    data = load_sequence_data(cfg)
    ce, pred, y = evaluate_sequences(model, data.test)
    k = len(data.classes)
    confusion = [[0] * k for _ in range(k)]
    for t, p in zip(y.tolist(), pred.tolist()):
        confusion[t][p] += 1
    result = dict(
        checkpoint=str(args.checkpoint),
        model=cfg.model,
        data=cfg.data,
        drop=cfg.drop,
        drop_mode=cfg.drop_mode,
        n_test=len(data.test),
        accuracy=float((pred == y).float().mean()),
        loss=float(ce.mean()),
        classes=data.classes,
        confusion=confusion,
    )
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{cfg.model} on {cfg.data} (drop {cfg.drop}, {cfg.drop_mode}) test split, {len(data.test)} series: "
            f"accuracy {result['accuracy']:.4f}, cross-entropy {result['loss']:.4f}"
        )
    return 0
