"""Throughput of `odeflow train cnf` with 1 process vs 2 processes (torchrun, gloo) at the same
global batch, measured side by side in one run on this machine. Prints a Markdown table.

Usage: python distributed.py [--iterations 60] [--batch 512]
Each configuration is run as a fresh command (import and process start-up excluded: the ratio
uses the trainer's own training time, summary.json's train_seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def run(nproc: int, threads: int, args, out: Path) -> dict:
    base = [
        "-m",
        "odeflow.cli.main",
        "train",
        "cnf",
        "--iterations",
        str(args.iterations),
        "--batch",
        str(args.batch),
        "--val-every",
        str(args.iterations),
        "--val-size",
        "256",
        "--quiet",
        "--out",
        str(out),
        *args.extra,
    ]
    cmd = (
        [sys.executable, *base]
        if nproc == 1
        else [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *base]
    )
    subprocess.run(cmd, check=True, env=dict(os.environ, OMP_NUM_THREADS=str(threads)), capture_output=True)
    return json.loads((out / "summary.json").read_text())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--iterations", type=int, default=60)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("extra", nargs="*", help="further `odeflow train cnf` options")
    args = p.parse_args()
    configs = [("1 process, 1 thread", 1, 1), ("1 process, 2 threads", 1, 2), ("2 processes x 1 thread (DDP)", 2, 1)]
    times = {label: [] for label, _, _ in configs}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):  # interleaved, so that load changes hit every configuration
            for label, nproc, threads in configs:
                s = run(nproc, threads, args, Path(tmp) / f"{r}_{nproc}_{threads}")
                times[label].append(s["train_seconds"] / s["iterations"])
    base = min(times[configs[0][0]])
    print(
        f"| configuration (global batch {args.batch}) | ms/iter (best of {args.repeats}) | it/s | speed-up vs 1 process, 1 thread |"
    )
    print("|---|---|---|---|")
    for label, _, _ in configs:
        t = min(times[label])
        print(f"| {label} | {1e3 * t:.1f} | {1 / t:.1f} | {base / t:.2f}x |")


if __name__ == "__main__":
    main()
