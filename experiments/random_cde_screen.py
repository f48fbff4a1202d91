"""Train-split-only screening of random-CDE variants (features and readout rules): every number
comes from the fit + validation series of the official training split (no test series are
loaded into features). Per set, drop and variant:

- `loo`: the ridge readout's leave-one-out accuracy at the alpha and block weight it chose
  (optimistic: the choice saw every series);
- `cv_<rule>`: repeated stratified k-fold accuracy of a whole readout rule (the rule's own
  choice of alpha / block weight made on the other folds only): `grid` (block weights 0, 0.3,
  1, 3, path alone), `fixed1` (weight 1), `coarse` (weights 0.3, 1, 3), `fixed1_a` (weight 1,
  alphas every decade), `avg` / `avg_coarse` (the mean decision values of one fit per block
  weight of the grid / of 0.3, 1, 3: no choice of the weight).

Variants: `base` (the model's defaults); extra readings of segments of 16 and 32 windows (`dil`:
4 coarse windows each, `dil8`: 8), of 4 half-length windows (`fine`), all three (`all`); every
reading twice with its own random field (`x2`); 512 units (`u512`); the window count from the
training series' distinct times instead of the longest series' points (`wgrid`, with `fine`:
`wgrid_fine`).

    python experiments/random_cde_screen.py --sets arrow-head --drops 0 0.5 --variants base dil8 wgrid

One JSON line per set, drop and variant on stdout; features cached under --cache.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from odeflow.data.irregular import collate  # noqa: E402
from odeflow.models.ridge import DEFAULT_ALPHAS, fit_ridge_classifier, loo_residuals, one_vs_rest  # noqa: E402
from odeflow.tasks.sequence_classify import build_sequence_classifier, load_sequence_data  # noqa: E402
from odeflow.tasks.sequence_classify_config import SequenceClassifyConfig  # noqa: E402
from odeflow.tasks.sequence_random import CHUNK, random_cde_features  # noqa: E402

VARIANTS: Dict[str, Dict[str, Any]] = {
    "base": {},
    # extra readings (segments of W / d windows, m windows each: W / d * m ... of the span), d: m
    "dil": dict(extra={16: 4, 32: 4}),
    "dil8": dict(extra={16: 8, 32: 8}),
    "fine": dict(extra={2: 4}),
    "all": dict(extra={2: 4, 16: 4, 32: 4}),
    "x2": dict(repeat=2),  # every reading twice, each with its own random field
    "u512": dict(units=512),
    "wgrid": dict(grid_windows=True),  # windows from the training series' distinct times, not the longest one's
    "wgrid_fine": dict(grid_windows=True, extra={2: 4}),
}
RULES: Dict[str, Dict[str, Any]] = {
    "grid": {},
    "fixed1": dict(ratios=(1.0,)),
    "coarse": dict(ratios=(0.3, 1.0, 3.0)),
    "fixed1_a": dict(ratios=(1.0,), alphas=tuple(10.0**k for k in range(-3, 6))),
    "avg": dict(average=(0.0, 0.3, 1.0, 3.0, math.inf)),  # mean of the decision values of one fit per weight
    "avg_coarse": dict(average=(0.3, 1.0, 3.0)),
}


def folds(labels: torch.Tensor, k: int, seed: int) -> List[torch.Tensor]:
    """Stratified fold index of each series."""
    g = torch.Generator().manual_seed(seed)
    fold = torch.empty_like(labels)
    for c in labels.unique():
        idx = (labels == c).nonzero().squeeze(1)
        idx = idx[torch.randperm(idx.shape[0], generator=g)]
        fold[idx] = torch.arange(idx.shape[0]) % k
    return [fold == j for j in range(k)]


def scores(
    f: torch.Tensor, labels: torch.Tensor, K: int, split: int, rule: Dict[str, Any], g: torch.Tensor
) -> torch.Tensor:
    """Decision values on g of the readout rule fitted on (f, labels)."""
    out = []
    for ratio in rule.get("average", [None]):
        kw = {k: v for k, v in rule.items() if k != "average"}
        if ratio is not None:
            kw["ratios"] = (ratio,)
        fit = fit_ridge_classifier(f, labels, K, split=split, **kw)
        out.append(fit.bias + ((g - fit.mean) / fit.scale) @ fit.weight)
    return torch.stack(out).mean(0)


def cv_accuracy(f: torch.Tensor, labels: torch.Tensor, K: int, split: int, rule: Dict[str, Any], repeats: int) -> float:
    right = 0
    for rep in range(repeats):
        for held in folds(labels, 5, rep):
            pred = scores(f[~held], labels[~held], K, split, rule, f[held]).argmax(-1)
            right += int((pred == labels[held]).sum())
    return right / (repeats * labels.shape[0])


def features(name: str, drop: float, seed: int, variant: str, cache: Path) -> Dict[str, Any]:
    path = cache / f"{name}_{drop}_{seed}_{variant}.pt"
    if path.is_file():
        return torch.load(path, weights_only=True)
    cfg = SequenceClassifyConfig(model="random-cde", data=name, drop=drop, seed=seed)
    data = load_sequence_data(cfg)
    train = data.train + data.val
    labels = torch.tensor([int(s.label) for s in train])  # type: ignore[arg-type]
    c0 = time.process_time()
    model = build_sequence_classifier(cfg, data)
    kw = VARIANTS[variant]
    if kw:
        from odeflow.models.random_cde import RandomCDEClassifier

        base = model
        readings = list(base.readings)
        W = base.readings[0][1]
        if kw.get("grid_windows"):
            from odeflow.models.nrde import default_windows
            from odeflow.models.random_cde import default_readings

            W = default_windows(int(torch.unique(torch.cat([s.times for s in train])).shape[0]))
            readings = list(default_readings(W))
        readings = readings * kw.get("repeat", 1)
        for d, m in kw.get("extra", {}).items():
            if round(W / d) >= 2:
                readings.append((round(W / d), m))
        model = RandomCDEClassifier(
            base.input_dim, base.num_classes, readings, float(base.span),
            float(base.origin), kw.get("units", 256), float(base.count_scale), seed, shifts=base.shifts,
        )  # fmt: skip
    batches = [collate(train[i : i + CHUNK]) for i in range(0, len(train), CHUNK)]
    model.path.fit((b.values, b.mask) for b in batches)
    f = random_cde_features(model, train)
    out = dict(f=f, labels=labels, K=len(data.classes), split=model.reservoir_features, cpu=time.process_time() - c0)
    torch.save(out, path)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sets", nargs="+", required=True)
    p.add_argument("--drops", nargs="+", type=float, default=[0.0, 0.3, 0.5])
    p.add_argument("--variants", nargs="+", default=["base"])
    p.add_argument("--rules", nargs="+", default=list(RULES))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--cache", type=Path, default=Path("/tmp/random_cde_screen"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    args.cache.mkdir(parents=True, exist_ok=True)
    for name in args.sets:
        for drop in args.drops:
            for variant in args.variants:
                d = features(name, drop, args.seed, variant, args.cache)
                f, labels, K, split = d["f"], d["labels"], d["K"], d["split"]
                fit = fit_ridge_classifier(f, labels, K, split=split)
                x = (f - fit.mean) / fit.scale
                y = one_vs_rest(labels, K, x.dtype)
                loo = float(((y - loo_residuals(x, y, fit.alpha)).argmax(-1) == labels).double().mean())
                row: Dict[str, Any] = dict(
                    set=name, drop=drop, variant=variant, n=int(labels.shape[0]), loo=round(loo, 4)
                )
                for r in args.rules:
                    row[f"cv_{r}"] = round(cv_accuracy(f, labels, K, split, RULES[r], args.repeats), 4)
                row.update(ratio=fit.ratio, features=int(f.shape[1]), cpu_features=round(float(d["cpu"]), 1))
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    assert DEFAULT_ALPHAS
    main()
