"""Issue 23 item 3: the five MAF sets at their real size, on this machine, in bounded memory.

For POWER, GAS, HEPMASS, MINIBOONE and BSDS300: arrays of the real split shapes (REFERENCE.md:
train/validation/test rows, d) filled with standard-normal values (only the size matters for
time and memory), each trained with its configs/<name>.toml (Disc-Opt by default) through
`train_tabular` under `--max-memory`. Each set runs in its own process, so its peak resident
memory (getrusage ru_maxrss) is its own. Reported per set:

- the memory plan chosen (plain / checkpointed segments / adjoint) and its predicted peak;
- seconds per training iteration (mean over the iterations after the first, and the first);
  the runs validate and test nothing (the passes are timed apart, below);
- peak resident memory of the process (data, model, optimizer, training and evaluation);
- seconds for one full validation pass (exact trace, rk4 with h/5 as validation uses) and one
  full test pass with the training solver and with rk4 h/5. A pass is timed on one chunk of
  rows for one rk4 step of every block and scaled by (rows / chunk rows) x steps: the cost of
  a fixed-step exact-trace solve is linear in rows and steps. Passes estimated this way are
  marked "est."; with --measure-below S a pass whose estimate is under S seconds is run in full.

Usage:
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/tabular_scale.py --max-memory 6 \
        --iterations 3 --out docs/tabular/scale_results.json [--sets miniboone power ...]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict

SHAPES = {  # train, validation, test rows; d (REFERENCE.md, "Split sizes")
    "power": (1_659_917, 184_435, 204_928, 6),
    "gas": (852_174, 94_685, 105_206, 8),
    "hepmass": (315_123, 35_013, 174_987, 21),
    "miniboone": (29_556, 3_284, 3_648, 43),
    "bsds300": (1_000_000, 50_000, 250_000, 63),
}
# seed 000 Table 2: total training time (s) on a Titan X GPU (12 GB), Disc-Opt and Opt-Disc
SEED_GPU_SECONDS = {
    "power": (56.0e3, 272e3),
    "gas": (121e3, 205e3),
    "hepmass": (281e3, 186e3),
    "miniboone": (3.77e3, 36.1e3),
    "bsds300": (49.7e3, 767e3),
}


def synthetic(name: str, seed: int = 0):
    import numpy as np

    from odeflow.data.tabular import TabularData

    n_train, n_val, n_test, d = SHAPES[name]
    rng = np.random.default_rng(seed)
    return TabularData(name, *(rng.standard_normal((n, d)) for n in (n_train, n_val, n_test)))


def pass_seconds(
    flow, x, method: str, h: float, T: float, chunk: int, timing_rows: int, measure_below: float
) -> Dict[str, Any]:
    """Seconds for an exact-trace NLL pass over x with rk4 step h: timed on `timing_rows` rows for
    one step of every block, scaled to all rows and steps; measured in full if the estimate is short."""
    from odeflow.flows.stacked import nll_per_sample
    from odeflow.solvers.stepping import FixedStep

    steps = math.ceil(T / h - 1e-9)
    part = x[:timing_rows]
    start = time.perf_counter()
    nll_per_sample(flow, part, method, FixedStep(steps=1), chunk=chunk)
    per_row_step = (time.perf_counter() - start) / part.shape[0]
    estimate = per_row_step * steps * x.shape[0]
    out = dict(
        rows=int(x.shape[0]),
        steps_per_block=steps,
        seconds=estimate,
        estimated=True,
        timed_rows=int(part.shape[0]),
        ms_per_row_step=1e3 * per_row_step,
    )
    if estimate < measure_below:
        start = time.perf_counter()
        nll_per_sample(flow, x, method, FixedStep(h), chunk=chunk)
        out.update(seconds=time.perf_counter() - start, estimated=False)
    return out


def run_one(name: str, args: argparse.Namespace) -> Dict[str, Any]:
    import torch

    from odeflow.tasks.tabular import DTYPES, TabularTask, read_tabular_config

    class TrainingOnly(TabularTask):
        """The task's setup (memory plan) and training step; validation and test are timed
        separately below (on this CPU one exact-trace BSDS300 row at rk4 h/5 takes minutes)."""

        def validate(self, ctx):
            return {}

        def finish(self, ctx):
            return dict(memory=self.memory)

    from odeflow.training import Trainer

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    config = Path(__file__).resolve().parents[1] / "configs" / f"{name}.toml"
    data = synthetic(name)
    cfg = read_tabular_config(
        config,
        args.mode,
        iterations=args.iterations,
        val_every=10**9,
        val_max=8,
        test_max=8,
        max_memory=args.max_memory,
        checkpoint_every=10**9,
        memory_plan=args.memory_plan,
    )
    task = TrainingOnly(cfg, data)
    trainer = Trainer(task, None, quiet=True, label=name)
    start = time.perf_counter()
    summary = trainer.fit()
    wall = time.perf_counter() - start
    times = [r["wall_time"] for r in trainer.history]
    per_iter = [b - a for a, b in zip([0.0] + times[:-1], times)]
    flow, chunk = task.flow, task.chunk
    dtype = DTYPES[cfg.dtype]
    T, h = float(cfg.T), float(cfg.step_size or 0.05)
    val = torch.tensor(data.val, dtype=dtype)
    test = torch.tensor(data.test, dtype=dtype)
    rows = min(chunk, args.timing_rows)
    result = dict(
        set=name,
        d=data.dim,
        train_rows=len(data.train),
        mode=cfg.mode,
        batch=cfg.batch,
        blocks=cfg.blocks,
        width=cfg.multiplier * data.dim,
        layers=cfg.layers,
        solver=f"{cfg.method} h={cfg.step_size}",
        iterations=len(per_iter),
        s_per_iter=sum(per_iter[1:]) / max(1, len(per_iter) - 1) if len(per_iter) > 1 else per_iter[0],
        s_first_iter=per_iter[0],
        plan=summary["memory"],
        eval_chunk=chunk,
        peak_rss_mb_training=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        run_wall_s=wall,
        validation_pass=pass_seconds(flow, val, "rk4", h / cfg.fine_factor, T, chunk, rows, args.measure_below),
        test_pass_training_solver=pass_seconds(flow, test, "rk4", h, T, chunk, rows, args.measure_below),
        test_pass_rk4_fine=pass_seconds(flow, test, "rk4", h / cfg.fine_factor, T, chunk, rows, args.measure_below),
        seed_gpu_total_s=dict(zip(("disc_opt", "opt_disc"), SEED_GPU_SECONDS[name])),
    )
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def markdown(results: Dict[str, Any]) -> str:
    """The docs table from results.json."""
    head = (
        "| set | d | batch | blocks x steps | plan (predicted peak) | s / iteration (first) | peak RSS | "
        "validation pass | test pass, training solver | test pass, rk4 h/5 | seed GPU total, Disc-Opt / Opt-Disc |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|"
    )
    rows = []

    def pass_text(p: Dict[str, Any]) -> str:
        mark = " est." if p["estimated"] else ""
        secs = p["seconds"]
        value = (
            f"{secs / 86400:.1f} d" if secs > 2 * 86400 else f"{secs / 3600:.1f} h" if secs > 5400 else f"{secs:.0f} s"
        )
        return f"{value}{mark} ({p['rows']:,} rows)"

    for r in results.values():
        if "error" in r:
            rows.append(f"| {r['set']} | failed: {' '.join(r['error'])} |")
            continue
        plan = r["plan"]
        what = plan["strategy"] + (f", segments of {plan['segment_steps']}" if plan["segment_steps"] else "")
        seed = r["seed_gpu_total_s"]
        rows.append(
            f"| {r['set']} | {r['d']} | {r['batch']:,} | {r['blocks']} x {plan['steps_per_block']} | {what} "
            f"({plan['predicted_mb'] / 1024:.1f} GB; plain {plan['plain_mb'] / 1024:.1f} GB) | "
            f"{r['s_per_iter']:.1f} ({r['s_first_iter']:.1f}) | {r['peak_rss_mb'] / 1024:.2f} GB | "
            f"{pass_text(r['validation_pass'])} | {pass_text(r['test_pass_training_solver'])} | "
            f"{pass_text(r['test_pass_rk4_fine'])} | {seed['disc_opt'] / 1e3:.1f}K s / {seed['opt_disc'] / 1e3:.0f}K s |"
        )
    return head + "\n" + "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--sets", nargs="+", default=["miniboone", "power", "hepmass", "gas", "bsds300"], choices=sorted(SHAPES)
    )
    p.add_argument("--mode", default="disc-opt", choices=["disc-opt", "opt-disc"])
    p.add_argument("--iterations", type=int, default=3)
    p.add_argument("--max-memory", type=float, default=6.0, help="GB (the issue's goal)")
    p.add_argument("--memory-plan", default="auto", choices=["auto", "plain", "checkpointed", "adjoint"])
    p.add_argument("--timing-rows", type=int, default=64, help="rows timed for a pass estimate")
    p.add_argument("--measure-below", type=float, default=30.0, help="run a pass in full if estimated under S s")
    p.add_argument("--out", type=Path, default=Path("docs/tabular/scale_results.json"))
    p.add_argument("--one", help=argparse.SUPPRESS)
    p.add_argument("--table", action="store_true", help="print the markdown table of --out and stop")
    args = p.parse_args()
    if args.table:
        print(markdown(json.loads(args.out.read_text())))
        return
    if args.one:
        print("RESULT " + json.dumps(run_one(args.one, args)), flush=True)
        return
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for name in args.sets:
        cmd = [
            sys.executable,
            __file__,
            "--one",
            name,
            "--mode",
            args.mode,
            "--iterations",
            str(args.iterations),
            "--max-memory",
            str(args.max_memory),
            "--memory-plan",
            args.memory_plan,
            "--timing-rows",
            str(args.timing_rows),
            "--measure-below",
            str(args.measure_below),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        if proc.returncode != 0 or not line:
            results[f"{name}:{args.mode}"] = dict(set=name, error=proc.stderr.strip().splitlines()[-3:])
        else:
            results[f"{name}:{args.mode}"] = json.loads(line[-1][7:])
        args.out.write_text(json.dumps(results, indent=1))
        print(name, json.dumps(results[f"{name}:{args.mode}"])[:400], flush=True)


if __name__ == "__main__":
    main()
