"""Train-split-only screening of the random-CDE classifier's feature blocks: the ridge readout's
leave-one-out accuracy on the fit + validation series (no test series are loaded into the
features) with the reservoir block alone, the path-PPV block alone (models.path_ppv), and both
with the block weight chosen by leave-one-out error (models.ridge, `split`), per set and drop.

    python experiments/random_cde_loo.py --sets acsf1 gunpoint --drops 0 0.3 0.5 --seed 0

One JSON line per set and drop on stdout (leave-one-out accuracies, the chosen ratio, CPU s).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from odeflow.data.irregular import collate  # noqa: E402
from odeflow.models.ridge import fit_ridge_classifier, loo_residuals, one_vs_rest  # noqa: E402
from odeflow.tasks.sequence_classify import build_sequence_classifier, load_sequence_data  # noqa: E402
from odeflow.tasks.sequence_classify_config import SequenceClassifyConfig  # noqa: E402
from odeflow.tasks.sequence_random import CHUNK, random_cde_features  # noqa: E402


def loo_accuracy(features: torch.Tensor, labels: torch.Tensor, K: int, split: int | None) -> tuple:
    """(leave-one-out accuracy at the chosen alpha (and ratio), the ratio)."""
    fit = fit_ridge_classifier(features, labels, K, split=split)
    x = (features - fit.mean) / fit.scale
    y = one_vs_rest(labels, K, x.dtype)
    pred = (y - loo_residuals(x, y, fit.alpha)).argmax(-1)
    return float((pred == labels).double().mean()), fit.ratio


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sets", nargs="+", required=True)
    p.add_argument("--drops", nargs="+", type=float, default=[0.0, 0.3, 0.5])
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)
    for name in args.sets:
        for drop in args.drops:
            cfg = SequenceClassifyConfig(model="random-cde", data=name, drop=drop, seed=args.seed)
            data = load_sequence_data(cfg)
            train = data.train + data.val
            labels = torch.tensor([int(s.label) for s in train])  # type: ignore[arg-type]
            K, c0 = len(data.classes), time.process_time()
            model = build_sequence_classifier(cfg, data)
            batches = (collate(train[i : i + CHUNK]) for i in range(0, len(train), CHUNK))
            model.path.fit((b.values, b.mask) for b in batches)
            f = random_cde_features(model, train)
            R = model.reservoir_features
            res, _ = loo_accuracy(f[:, :R], labels, K, None)
            path, _ = loo_accuracy(f[:, R:], labels, K, None)
            both, ratio = loo_accuracy(f, labels, K, R)
            row = dict(set=name, drop=drop, seed=args.seed, loo_reservoir=res, loo_path=path, loo_both=both)
            row.update(ratio="path only" if ratio is not None and math.isinf(ratio) else ratio)
            row.update(cpu_seconds=round(time.process_time() - c0, 1))
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
