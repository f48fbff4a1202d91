"""What a cold `compile=True` costs, and what building Inductor's C++ wrapper apart from the
kernels saves (`odeflow.solvers.compiled.inductor_options`).

Each variant runs one `peers_cpu.py` workload (``cnf``: the CNF training step; ``fixed``,
``adjoint``: the seed-000 spiral) in a fresh process with empty odeflow and Inductor cache
directories (and, with ``--fresh-headers``, no precompiled headers either), and reports the first
call's wall time, its CPU time in Python (tracing, lowering, code generation) and in g++ (child
processes), then the median CPU ms of the later iterations. Variants:

- ``one-file``: wrapper and kernels in one C++ file at -O3 (odeflow before 2026-12-07);
- ``apart``: odeflow's settings (the wrapper built apart at -O1, the kernels at -O3).

CPU times are reported because they hold on a loaded machine; wall times only mean something
on a quiet one. Asserts nothing.

Usage: python benchmarks/cold_compile.py [--workload cnf] [--variants one-file,apart] [--iterations 30]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VARIANTS = {"one-file": {"cpp_wrapper": True, "cpp_wrapper_build_separate": False}, "apart": None}


def _cpu() -> tuple:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


def child(variant: str, workload: str, iterations: int, headers: str) -> None:
    import torch

    torch.set_num_threads(1)
    import odeflow.solvers.compiled as compiled

    if VARIANTS[variant] is not None:
        compiled.inductor_options = lambda: dict(VARIANTS[variant])  # type: ignore[assignment]
    if headers:
        import torch._inductor.codecache as codecache

        codecache._HEADER_DIR = headers
        codecache._HEADER_LOCK_DIR = os.path.join(headers, "locks")
    sys.path.insert(0, str(HERE))
    import peers_cpu

    if workload == "cnf":
        run, _ = peers_cpu.cnf_side(peers_cpu.cnf_problem(), "odeflow compile=True")
    else:
        import numpy as np

        path = Path(tempfile.mkdtemp()) / "problem.npz"
        peers_cpu.write_problem(path)
        run, _ = peers_cpu.spiral_side(dict(np.load(path)), "odeflow compile=True", workload)
    wall0, (own0, kids0) = time.perf_counter(), _cpu()
    loss = run()
    wall1, (own1, kids1) = time.perf_counter(), _cpu()
    times = []
    for _ in range(iterations):
        start = time.process_time()
        loss = run()
        times.append(time.process_time() - start)
    print(
        json.dumps(
            {
                "variant": variant,
                "workload": workload,
                "first_call_wall_s": wall1 - wall0,
                "first_call_python_cpu_s": own1 - own0,
                "first_call_gxx_cpu_s": kids1 - kids0,
                "cpu_ms_per_iter": 1e3 * statistics.median(times),
                "final_loss": float(loss),
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", default="cnf", choices=["cnf", "fixed", "adjoint"])
    ap.add_argument("--variants", default="one-file,apart")
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--fresh-headers", action="store_true", help="no precompiled headers either")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--headers", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.workload, args.iterations, args.headers)
        return
    print(f"load average {os.getloadavg()[0]:.2f}; workload {args.workload}\n")
    print("| variant | first call wall s | Python CPU s | g++ CPU s | CPU ms/iter | final loss |")
    print("|---|---|---|---|---|---|")
    for variant in args.variants.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            env = {
                **os.environ,
                "OMP_NUM_THREADS": "1",
                "ODEFLOW_CACHE_DIR": os.path.join(tmp, "odeflow"),
                "TORCHINDUCTOR_CACHE_DIR": os.path.join(tmp, "inductor"),
            }
            cmd = [sys.executable, __file__, "--child", variant, "--workload", args.workload]
            cmd += ["--iterations", str(args.iterations)]
            if args.fresh_headers:
                cmd += ["--headers", os.path.join(tmp, "headers")]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if out.returncode != 0:
                print(f"| {variant} | failed: {out.stderr.strip().splitlines()[-1]} |")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"| {variant} | {r['first_call_wall_s']:.1f} | {r['first_call_python_cpu_s']:.1f} | "
                f"{r['first_call_gxx_cpu_s']:.1f} | {r['cpu_ms_per_iter']:.2f} | {r['final_loss']:.4f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
