"""Does the EMA's warmup keep the average from lagging early? Counted in iterations.

Per seed one flow-matching run with the command line's defaults (`fm_gap.Variant` 'rev': the net
reads 1 - s, lr 3e-3; the benchmark's net, batches and evaluator) carries three sets of weights:
the raw iterate, the EMA 0.99 with warmup (beta_n = min(0.99, (1 + n) / (10 + n)), odeflow's
default) and the EMA 0.99 without warmup (beta_n = 0.99 from the first update, the average
starting at the initial weights). At each of `--checks` iterations all three are scored by the
benchmark's one evaluator (exact-trace test NLL, dopri5 1e-5). Iterations, not seconds: the
result does not depend on the machine's load. JSON lines to `--out`; `--summarize FILE` prints
the mean over seeds per check.

Usage: PYTHONPATH=src python experiments/fm_ema_warmup.py --data 8gaussians --seeds 0 1 2 \
           --checks 100 200 400 700 1000 1500
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List

import torch

from odeflow.tasks.objective_config import FM_DEFAULTS, FM_EMA_DECAY
from odeflow.training.ema import EMA

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fm_gap import Variant, make_problem  # noqa: E402


def summarize(path: Path) -> str:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    by: Dict[tuple, Dict[str, List[float]]] = {}
    for r in rows:
        for p in r["curve"]:
            cell = by.setdefault((r["data"], p["it"]), {})
            for k in ("raw", "warmup", "no_warmup"):
                cell.setdefault(k, []).append(p[k])
    lines = ["| data | iteration | raw | EMA 0.99, warmup | EMA 0.99, no warmup | seeds |", "|---|---|---|---|---|---|"]
    for (data, it), cell in sorted(by.items()):
        mean = {k: sum(v) / len(v) for k, v in cell.items()}
        lines.append(
            f"| {data} | {it} | {mean['raw']:.3f} | {mean['warmup']:.3f} | {mean['no_warmup']:.3f} | {len(cell['raw'])} |"
        )
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--summarize":
        print(summarize(Path(sys.argv[2])))
        return
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--checks", type=int, nargs="+", required=True)
    p.add_argument("--test-size", type=int, default=1000)
    p.add_argument("--out", type=Path, default=Path("experiments/fm_ema_warmup.jsonl"))
    args = p.parse_args()
    torch.set_num_threads(1)
    problem = make_problem(args.data, args.test_size)
    for seed in args.seeds:
        v = Variant("rev", problem, seed, [], lr=float(FM_DEFAULTS["lr"]))
        warm, cold = EMA(v.net, FM_EMA_DECAY), EMA(v.net, FM_EMA_DECAY, warmup=False)
        curve = []
        for it in range(1, args.checks[-1] + 1):
            v.step(problem.sample(seed, it - 1))
            warm.update()
            cold.update()
            if it in args.checks:
                point = dict(it=it, raw=problem.evaluate(v.field, 1.0)[0])
                for key, ema in (("warmup", warm), ("no_warmup", cold)):
                    with ema.applied():
                        point[key] = problem.evaluate(v.field, 1.0)[0]
                curve.append(point)
                print(args.data, seed, json.dumps(point), flush=True)
        with args.out.open("a") as f:
            f.write(json.dumps(dict(data=args.data, seed=seed, lr=FM_DEFAULTS["lr"], curve=curve)) + "\n")


if __name__ == "__main__":
    main()
