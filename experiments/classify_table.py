"""Markdown table of `odeflow train classify` runs: python experiments/classify_table.py RUN_DIR...

One row per run folder (its summary.json and config.json): model, data, gradient mode, solver,
test accuracy, test cross-entropy, parameters, NFE per forward solve at test time, NFE forward/backward per training
iteration (mean over the run), seconds per epoch.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path


def row(folder: Path) -> str:
    s = json.loads((folder / "summary.json").read_text())
    c = json.loads((folder / "config.json").read_text())
    c = c.get("config", c)
    with open(folder / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    fwd = sum(float(r["nfe_forward"]) for r in rows) / len(rows)
    bwd = sum(float(r["nfe_backward"]) for r in rows) / len(rows)
    if c["model"] == "resnet":
        solver = f"{c['n_steps']} Euler blocks"
    elif c.get("n_steps"):
        solver = f"{c['method']} {c['n_steps']} steps"
    else:
        solver = f"{c['method']} rtol {c['rtol']:g}"
    extra = f", λK {c['kinetic']:g}" if c.get("kinetic") else ""
    return (
        f"| {c['model']} | {c['data']} | {c['mode']}{extra} | {solver} | {s['test_accuracy']:.4f} | {s['test_loss']:.3f} | "
        f"{s['parameters']:,} | {s['test_nfe']} | {fwd:.1f} / {bwd:.1f} | {s['epochs_trained']:.0f} | "
        f"{s['seconds_per_epoch']:.2f} |"
    )


def main(folders) -> None:
    print(
        "| model | data | gradient | solver | test accuracy | test CE | parameters | test NFE | train NFE fwd / bwd "
        "| epochs | s / epoch |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for f in folders:
        print(row(Path(f)))


if __name__ == "__main__":
    main(sys.argv[1:])
