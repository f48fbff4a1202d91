"""A/B of `odeflow.keep_freed_memory()` on peers_cpu.py's ``odeflow compile=True`` rows (``--side``).

Each run is a separate process (peers_cpu.py's own child: one side, one workload, one thread,
pinned to core 0), with or without ``keep_freed_memory()`` called first; the two alternate
within each round (the order flips every round), and each reports the median ms of
``--iterations`` training iterations after the first call. All runs share one compile cache,
warmed by an untimed first run; a workload whose first call exceeds ``--first-call-limit``
seconds (a cold CNF compile takes minutes) is skipped.

    python benchmarks/malloc_ab.py --workloads fixed,cnf --rounds 4 --iterations 100
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

HERE = Path(__file__).resolve().parent
SIDE = "odeflow compile=True"
CHILD = """
import runpy, sys
if sys.argv[1] == "keep":
    import odeflow
    assert odeflow.keep_freed_memory(), "glibc rejected the malloc settings"
sys.argv = [sys.argv[2]] + sys.argv[3:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run(
    variant: str, workload: str, problem: Path, iterations: int, cache: str, limit: float, side: str = SIDE
) -> Optional[dict]:
    """One child process; None when it ran past ``limit`` seconds."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ODEFLOW_CACHE_DIR": cache, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-c", CHILD, variant, str(HERE / "peers_cpu.py"), "--side", side]
    cmd += ["--workload", workload, "--problem", str(problem), "--iterations", str(iterations)]
    try:
        out = subprocess.run(
            cmd,
            env=env,
            capture_output=True,
            text=True,
            timeout=limit,
            preexec_fn=lambda: os.sched_setaffinity(0, {0}),
        )
    except subprocess.TimeoutExpired:
        return None
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workloads", default="fixed")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--cache", default=None, help="compile cache to use (default: a new, empty one)")
    ap.add_argument("--first-call-limit", type=float, default=120.0)
    ap.add_argument("--side", default=SIDE, help="peers_cpu.py's side (e.g. 'odeflow compile_step')")
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    from peers_cpu import write_problem

    tmp = Path(tempfile.mkdtemp(prefix="odeflow-malloc-"))
    problem = tmp / "problem.npz"
    write_problem(problem)
    cache = args.cache or str(tmp / "cache")
    print(f"side: {args.side}\n")
    print("| workload | variant | ms/iter per round | median | first call s (warm) | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for workload in args.workloads.split(","):
        warm = run("default", workload, problem, 2, cache, args.first_call_limit, args.side)
        if warm is None:
            print(f"| {workload} | skipped: first call over {args.first_call_limit:.0f} s (cold compile) | | | | |")
            continue
        res: Dict[str, List[dict]] = {"default": [], "keep": []}
        for r in range(args.rounds):
            for variant in ("default", "keep") if r % 2 == 0 else ("keep", "default"):
                out = run(variant, workload, problem, args.iterations, cache, 600.0, args.side)
                assert out is not None
                res[variant].append(out)
                print(workload, variant, json.dumps(out), file=sys.stderr, flush=True)
        for variant, runs in res.items():
            ms = [x["ms_per_iter"] for x in runs]
            first = statistics.median(x["first_call_s"] for x in runs)
            rss = max(x["peak_rss_mb"] for x in runs)
            print(
                f"| {workload} | {variant} | {', '.join(f'{m:.2f}' for m in ms)} | "
                f"{statistics.median(ms):.2f} | {first:.1f} | {rss:.0f} |"
            )
        ratio = statistics.median(x["ms_per_iter"] for x in res["keep"]) / statistics.median(
            x["ms_per_iter"] for x in res["default"]
        )
        print(f"| {workload} | keep / default | | {ratio:.2f}x | | |")


if __name__ == "__main__":
    main()
