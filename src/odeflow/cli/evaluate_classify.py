"""`odeflow evaluate RUN/best.pt` for classifier runs: test accuracy and NFE, optionally with
another solver than the training one (re-discretization; the ResNet twin keeps its blocks)."""

from __future__ import annotations

import argparse
import json
from typing import Any, Dict

from .solver_options import chosen_solver, describe_step


def evaluate_classify(args: argparse.Namespace, state) -> int:
    from ..data.classification import load_classification
    from ..tasks.classify import evaluate_classifier, load_classifier

    model, cfg = load_classifier(args.checkpoint)
    solver = chosen_solver(args)
    if solver is not None:
        model.set_solver(*solver)
    x, y = load_classification(cfg.data, "test", cfg.data_dir, seed=cfg.seed)
    result: Dict[str, Any] = dict(evaluate_classifier(model, x, y, progress=not args.quiet))
    method = "euler (ResNet blocks)" if cfg.model == "resnet" else model.block.method
    step = "" if cfg.model == "resnet" else describe_step(model.block.step)
    result.update(checkpoint=str(args.checkpoint), model=cfg.model, data=cfg.data, method=method, step=step)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{cfg.model} on {cfg.data} test split with {method} {step}: accuracy {result['accuracy']:.4f}, "
            f"cross-entropy {result['loss']:.4f}, NFE {result['nfe']}"
        )
    return 0
