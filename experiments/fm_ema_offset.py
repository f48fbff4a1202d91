"""How much does the EMA's warmup offset w change the early lag? Counted in iterations.

Per seed one flow-matching run (`fm_gap.Variant`: 'rev' the net reads 1 - s, 't' it reads s; lr
`--lr`, the benchmark's net, batches and evaluator) carries the raw iterate and one EMA 0.99 per
offset w, beta_n = min(0.99, (1 + n) / (w + n)) (odeflow.training.ema.EMA, w = 10 TensorFlow's
and odeflow's former default; early on the average spans ~n / (w - 1) steps). At each of `--checks`
iterations all are scored by the benchmark's one evaluator (exact-trace test NLL or bits/dim,
dopri5 1e-5). Iterations, not seconds: the result does not depend on the machine's load. JSON
lines to `--out`; `--summarize FILE` prints the mean over seeds per check.

Usage: PYTHONPATH=src python experiments/fm_ema_offset.py --data miniboone-shaped --seeds 0 1 2 \
           --checks 300 500 1000 2000 --offsets 10 20 50 --test-size 300
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List

import torch

from odeflow.tasks.objective_config import FM_EMA_DECAY
from odeflow.training.ema import EMA

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fm_gap import Variant, make_problem  # noqa: E402


def summarize(path: Path) -> str:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    by: Dict[tuple, Dict[str, List[float]]] = {}
    keys: Dict[str, None] = {}
    for r in rows:
        for p in r["curve"]:
            cell = by.setdefault((r["data"], r["variant"], r["lr"], p["it"]), {})
            for k, v in p.items():
                if k != "it":
                    keys[k] = None
                    cell.setdefault(k, []).append(v)
    head = " | ".join(keys)
    lines = [f"| data | net time | lr | iteration | {head} | seeds |", "|---" * (5 + len(keys)) + "|"]
    for (data, variant, lr, it), cell in sorted(by.items()):
        cells = " | ".join(f"{sum(cell[k]) / len(cell[k]):.3f}" if k in cell else "" for k in keys)
        lines.append(f"| {data} | {variant} | {lr:g} | {it} | {cells} | {len(cell['raw'])} |")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--summarize":
        print(summarize(Path(sys.argv[2])))
        return
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--variant", choices=["rev", "t"], default="rev")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--checks", type=int, nargs="+", required=True)
    p.add_argument("--offsets", type=float, nargs="+", default=[10.0, 20.0, 50.0])
    p.add_argument("--test-size", type=int, default=1000)
    p.add_argument("--out", type=Path, default=Path("experiments/fm_ema_offset.jsonl"))
    args = p.parse_args()
    torch.set_num_threads(1)
    problem = make_problem(args.data, args.test_size)
    for seed in args.seeds:
        v = Variant(args.variant, problem, seed, [], lr=args.lr)
        emas = {f"w{w:g}": EMA(v.net, FM_EMA_DECAY, warmup_offset=w) for w in args.offsets}
        curve = []
        for it in range(1, args.checks[-1] + 1):
            v.step(problem.sample(seed, it - 1))
            for ema in emas.values():
                ema.update()
            if it in args.checks:
                point = dict(it=it, raw=problem.evaluate(v.field, 1.0)[0])
                for key, ema in emas.items():
                    with ema.applied():
                        point[key] = problem.evaluate(v.field, 1.0)[0]
                curve.append(point)
                print(args.data, args.variant, seed, json.dumps(point), flush=True)
        with args.out.open("a") as f:
            f.write(json.dumps(dict(data=args.data, variant=args.variant, seed=seed, lr=args.lr, curve=curve)) + "\n")


if __name__ == "__main__":
    main()
