"""Issue 18 item 2: what compiling costs and when it pays, on the seed-000 spiral.

Each variant trains the seed's model for 300 iterations (solve, SSE loss, backward, Adam step,
as `odeflow train timeseries` does, without its diagnostics) in a fresh Python process, and
reports the first iteration (which compiles or loads), the median of the later iterations and
the whole run. Variants: torchdiffeq, odeflow eager, odeflow compile=True and compile='auto'
(AutoCompile(expected_calls=300), what the CLI uses), each compiled one cold (an empty cache
directory) and warm (a second process on the directory the cold run filled). Processes run
in rounds (every variant once per round, in turn), and the medians over rounds are reported.
Process start-up and imports are not counted (the same for every variant).

Usage: python benchmarks/compile_cost.py [--mode disc-opt|opt-disc] [--rounds N] [--iterations N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(variant: str, mode: str, iterations: int) -> None:
    import torch

    torch.set_num_threads(1)
    import odeflow
    from odeflow.tasks.timeseries import TimeSeriesConfig, build_model, load_data

    cfg = TimeSeriesConfig(mode=mode, iterations=iterations)
    t, u = load_data(cfg)
    model = build_model(cfg, 2)
    field, u0 = model.field, u[0]
    opt = torch.optim.Adam(field.parameters(), lr=cfg.lr)
    if variant == "torchdiffeq":
        import torchdiffeq

        if mode == "disc-opt":
            forward = lambda: torchdiffeq.odeint(field, u0, t, method="rk4")  # noqa: E731
        else:
            forward = lambda: torchdiffeq.odeint_adjoint(
                field,
                u0,
                t,
                rtol=cfg.rtol,
                atol=cfg.atol,  # noqa: E731
                method="dopri5",
            )
    else:
        kw = cfg.solver_kwargs()
        kw["compile"] = {"eager": False, "compile": True}.get(variant, odeflow.AutoCompile(expected_calls=iterations))
        forward = lambda: odeflow.solve(field, u0, t, **kw).ys  # noqa: E731
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        (forward() - u).pow(2).sum().backward()
        opt.step()
        times.append(time.perf_counter() - start)
    print(
        json.dumps(
            dict(
                first=times[0],
                per_iter=statistics.median(times[1:]),
                total=sum(times),
                loss=float((forward() - u).pow(2).sum().detach()),
            )
        )
    )


def run_child(variant: str, mode: str, iterations: int, cache: Path) -> dict:
    env = dict(os.environ, ODEFLOW_CACHE_DIR=str(cache), OMP_NUM_THREADS="1")
    env.pop("TORCHINDUCTOR_CACHE_DIR", None)
    out = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            variant,
            "--mode",
            mode,
            "--iterations",
            str(iterations),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", default="disc-opt", choices=["disc-opt", "opt-disc"])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--child", default=None)
    ap.add_argument("--only", default=None, help="comma-separated variants to run (default: all)")
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.mode, args.iterations)
    rows = ["torchdiffeq", "eager", "compile cold", "compile warm", "auto cold", "auto warm"]
    if args.only:
        rows = [r for r in rows if r in args.only.split(",")]
    results = {r: [] for r in rows}
    for _ in range(args.rounds):
        with (
            tempfile.TemporaryDirectory(prefix="odeflow-cc-") as a,
            tempfile.TemporaryDirectory(prefix="odeflow-ca-") as b,
        ):
            # compile: cold on an empty directory a, then warm on it; auto: cold on another empty
            # directory b, warm on a (filled by compile=True)
            plan = [
                ("torchdiffeq", "torchdiffeq", a),
                ("eager", "eager", a),
                ("compile cold", "compile", a),
                ("compile warm", "compile", a),
                ("auto cold", "auto", b),
                ("auto warm", "auto", a),
            ]
            for row, variant, folder in plan:
                if row in results:
                    results[row].append(run_child(variant, args.mode, args.iterations, Path(folder)))
    med = {
        r: {k: statistics.median(x[k] for x in v) for k in ("first", "per_iter", "total", "loss")}
        for r, v in results.items()
    }
    peer = med["torchdiffeq"]["total"] if "torchdiffeq" in med else float("nan")
    eager = med["eager"]["total"] if "eager" in med else float("nan")
    print(
        f"Seed 000 spiral, {args.mode}, {args.iterations} iterations, medians of {args.rounds} rounds; "
        f"load average {os.getloadavg()[0]:.2f} at the end\n"
    )
    print(
        "| variant | first iteration s | later iterations ms (median) | whole run s | torchdiffeq / run | "
        "eager / run | final loss |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        m = med[r]
        print(
            f"| {r} | {m['first']:.2f} | {1e3 * m['per_iter']:.2f} | {m['total']:.1f} | {peer / m['total']:.2f}x | "
            f"{eager / m['total']:.2f}x | {m['loss']:.4g} |"
        )
    print(
        "\nall rounds (whole run s): " + json.dumps({r: [round(x["total"], 1) for x in v] for r, v in results.items()})
    )


if __name__ == "__main__":
    main()
