"""Test accuracy of odeflow's sequence classifiers and a neural CDE peer on UEA sets with a share
of the observations dropped (issue 25): mean ± std over seeds, and seconds per epoch.

Every run: the same data (official split, drop seeded by the run's seed, 10% of the training
split held out for validation), the same budget (`--iterations` steps of batches of 16, Adam,
lr 1e-2 with cosine decay, gradient norm clipped at 10) and the same seed for every model; the
test accuracy of the last iterate. odeflow models go through tasks/sequence_classify.py (the code
of `odeflow train classify`); the neural CDE is experiments/ncde_peer.py (torchcde).

Usage:
  python experiments/irregular_table.py run --model gru-d --data basic-motions --drop 0.5 --seed 0
  python experiments/irregular_table.py grid [--data basic-motions] [--drops 0 0.3 0.5 0.7] [--seeds 0 1 2]
  python experiments/irregular_table.py table [--data basic-motions]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

OUT = Path("runs/irregular_table")
MODELS = ("ode-rnn", "latent-ode", "gru-dt", "gru-d", "ncde")


def run(model: str, data: str, drop: float, seed: int, iterations: int, drop_mode: str, out: Path) -> dict:
    from odeflow.tasks.sequence_classify import SequenceClassifyConfig, train_sequence_classify

    cfg = SequenceClassifyConfig(
        model="gru-d" if model == "ncde" else model,
        data=data,
        drop=drop,
        drop_mode=drop_mode,
        seed=seed,
        iterations=iterations,
        val_every=iterations,
        val_fraction=0.1,  # the documented protocol: 10 % held out, last iterate, fixed budget
        patience=None,
    )
    t0 = time.perf_counter()
    if model == "ncde":
        from ncde_peer import train_ncde

        s = train_ncde(cfg)
    else:
        s = train_sequence_classify(cfg, None, progress=False)
    result = dict(
        model=model,
        data=data,
        drop=drop,
        drop_mode=drop_mode,
        seed=seed,
        iterations=iterations,
        test_accuracy=s["test_accuracy"],
        seconds_per_epoch=s["seconds_per_epoch"],
        parameters=s["parameters"],
        wall_seconds=time.perf_counter() - t0,
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{data}_{model}_{drop_mode}{drop:g}_s{seed}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result), flush=True)
    return result


def table(out: Path, data: str) -> str:
    rows = [json.loads(p.read_text()) for p in sorted(out.glob(f"{data}_*.json"))]
    drops = sorted({r["drop"] for r in rows})
    lines = [
        "| model | " + " | ".join(f"{int(100 * d)}% dropped" for d in drops) + " | s / epoch |",
        "|---|" + "---|" * len(drops) + "---|",
    ]
    for m in MODELS:
        cells, speed = [], []
        for d in drops:
            acc = [r["test_accuracy"] for r in rows if r["model"] == m and r["drop"] == d]
            speed += [r["seconds_per_epoch"] for r in rows if r["model"] == m and r["drop"] == d]
            if not acc:
                cells.append("not run")
            elif len(acc) == 1:
                cells.append(f"{100 * acc[0]:.1f} (1 seed)")
            else:
                cells.append(f"{100 * statistics.mean(acc):.1f} ± {100 * statistics.stdev(acc):.1f} ({len(acc)} seeds)")
        if speed:
            lines.append(f"| {m} | " + " | ".join(cells) + f" | {statistics.median(speed):.2f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["run", "grid", "table"])
    p.add_argument("--model", choices=MODELS, default="gru-d")
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    p.add_argument("--data", default="basic-motions")
    p.add_argument("--drop", type=float, default=0.0)
    p.add_argument("--drops", type=float, nargs="+", default=[0.0, 0.3, 0.5, 0.7])
    p.add_argument("--drop-mode", default="time", choices=["time", "channel"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--out", type=Path, default=OUT)
    a = p.parse_args()
    if a.command == "run":
        run(a.model, a.data, a.drop, a.seed, a.iterations, a.drop_mode, a.out)
    elif a.command == "grid":
        for drop in a.drops:
            for seed in a.seeds:
                for m in a.models:
                    if not (a.out / f"{a.data}_{m}_{a.drop_mode}{drop:g}_s{seed}.json").exists():
                        run(m, a.data, drop, seed, a.iterations, a.drop_mode, a.out)
    else:
        print(table(a.out, a.data))


if __name__ == "__main__":
    main()
