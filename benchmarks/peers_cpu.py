"""odeflow against diffrax (JAX) and torchdiffeq on this CPU: ms per training iteration.

The seed-000 spiral (du/dt = A^T u^3, 30 points on [0, 1.5]) fitted by f(u) = W2 tanh(W1 u^3 + b1)
+ b2 (2-50-2), loss = sum of squared errors, Adam (lr 0.01), float64, one thread per process:

- fixed:   tsit5, 29 constant steps, backprop through the steps (Disc-Opt); torchdiffeq 0.2.5
           has no tsit5 and runs its rk4 (3/8 rule) instead;
- adjoint: dopri5, rtol 1e-7, atol 1e-9, backsolve adjoint (Opt-Disc).

and a CNF training step (``cnf``): 8gaussians batches of 256 (a fixed pool drawn once, batch i of
the pool at iteration i), FFJORD's toy net (concatsquash 64-64-64, tanh), T = 0.5, classic rk4 with
4 steps, Disc-Opt, Hutchinson trace (Gaussian noise), RNODE lambda_K = lambda_J = 0.01, Adam lr
1e-3, float32. diffrax has no classic rk4, so the JAX side is the same augmented field and rk4 in
plain JAX under one ``jax.jit`` of the whole step.

Every side starts from the same weights (one NumPy array, seed 0) and the same data, and runs in
its own process (pinned to one core, one thread); rounds alternate the sides, and the median
ms/iter of each round, the first call (compile) and peak resident memory are reported. odeflow
runs eager, with ``solve(compile=True)``, and with the whole training step compiled
(`odeflow.compile_step`). The odeflow compile cache starts empty in round 1 (cold) and is
reused in later rounds (warm). On the spiral rows, "forward error" is the largest error of the
last forward solve at the final weights against dopri8 at rtol 1e-13 (each side's own step
control at the same tolerances buys a different accuracy). The extra side
``odeflow compile=True I-controller`` (``--sides``, adjoint row) runs odeflow with the
I-controller (``Adaptive(alpha=1, beta=0)``, diffrax's default kind) instead of its PI default.

diffrax runs in a separate Python that has jax, diffrax and optax (never a dependency of
odeflow): ``python -m venv .venv-jax && .venv-jax/bin/pip install jax diffrax optax``, then

    python benchmarks/peers_cpu.py --jax-python .venv-jax/bin/python [--rounds 3] [--iterations 200]
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
from typing import Dict, List

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
SIDES = ("torchdiffeq", "odeflow", "odeflow compile=True", "odeflow compile_step", "diffrax")
I_CONTROLLER = "odeflow compile=True I-controller"  # adjoint row only: odeflow with diffrax's kind of controller


def write_problem(path: Path) -> None:
    """The shared problem: data from the true spiral (scipy, rtol 1e-12) and Glorot weights."""
    import numpy as np
    from scipy.integrate import solve_ivp

    a = np.array([[-0.1, 2.0], [-2.0, -0.1]])
    t = np.linspace(0.0, 1.5, 30)
    sol = solve_ivp(lambda _t, u: (u**3) @ a, (0.0, 1.5), [2.0, 0.0], t_eval=t, rtol=1e-12, atol=1e-12)
    rng = np.random.default_rng(0)

    def glorot(n_out: int, n_in: int) -> np.ndarray:
        bound = np.sqrt(6.0 / (n_in + n_out))
        return rng.uniform(-bound, bound, size=(n_out, n_in))

    np.savez(
        path,
        t=t,
        u=sol.y.T.copy(),
        w1=glorot(50, 2),
        b1=np.zeros(50),
        w2=glorot(2, 50),
        b2=np.zeros(2),
        lr=np.array(0.01),
        **cnf_problem(),
    )


CNF_BATCHES, CNF_BATCH = 20, 256


def cnf_net():
    """FFJORD's toy CNF net (concatsquash 64-64-64, tanh) with torch's default initialization."""
    from odeflow.nn import ODENet

    torch.manual_seed(0)
    return ODENet(2, hidden=(64, 64, 64), layer="concatsquash", activation="tanh")


def cnf_problem() -> dict:
    """The CNF net's initial weights (one array per parameter, 'cnf.' + its name) and the data pool."""
    import numpy as np

    from odeflow.data.toy2d import sample_toy

    arrays = {f"cnf.{k}": v.detach().numpy().astype(np.float32) for k, v in cnf_net().state_dict().items()}
    pool = sample_toy("8gaussians", CNF_BATCHES * CNF_BATCH, seed=0).numpy()
    arrays["cnf_data"] = pool.reshape(CNF_BATCHES, CNF_BATCH, 2)
    return arrays


class SpiralField(nn.Module):
    """f(u) = W2 tanh(W1 u^3 + b1) + b2 with the shared weights (a module-level class, so that
    compiled solvers can be saved to odeflow's cache and loaded by later rounds)."""

    def __init__(self, p: dict) -> None:
        super().__init__()
        self.l1, self.l2 = nn.Linear(2, 50).double(), nn.Linear(50, 2).double()
        with torch.no_grad():
            for lin, w, b in ((self.l1, "w1", "b1"), (self.l2, "w2", "b2")):
                lin.weight.copy_(torch.tensor(p[w]))
                lin.bias.copy_(torch.tensor(p[b]))

    def forward(self, _t, y):
        return self.l2(torch.tanh(self.l1(y**3)))


def cnf_side(p: dict, side: str):
    """(training step, stats getter) of the CNF workload for one torch side."""
    import odeflow
    from odeflow.flows.cnf import CNF

    if side == "torchdiffeq":
        raise ValueError("torchdiffeq has no CNF training step (FFJORD's scripts wrap it); not measured")
    net = cnf_net()
    net.load_state_dict({k[4:]: torch.from_numpy(v) for k, v in p.items() if k.startswith("cnf.")})
    flow = CNF(
        net,
        2,
        T=0.5,
        divergence="hutchinson",
        method="rk4",
        step=odeflow.FixedStep(steps=4),
        kinetic=0.01,
        jacobian=0.01,
        compile=side != "odeflow",
    )
    opt = torch.optim.Adam(flow.parameters(), lr=1e-3)
    data = torch.from_numpy(p["cnf_data"])
    it = [0]

    def loss_fn() -> torch.Tensor:
        x = data[it[0] % len(data)]
        it[0] += 1
        return flow.loss(x)[0]

    return training_step(side, loss_fn, opt), lambda: flow.last_stats


def training_step(side: str, loss_fn, opt: torch.optim.Optimizer):
    """zero_grad, loss, backward, update: `odeflow.compile_step` on that side, else eager."""
    import odeflow

    if side == "odeflow compile_step":
        return odeflow.compile_step(loss_fn, opt)

    def run() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        opt.step()
        return loss.detach()

    return run


def spiral_side(p: dict, side: str, workload: str):
    """(training step, stats getter) of a spiral workload (``fixed`` or ``adjoint``) for one torch side."""
    import torch

    import odeflow

    d = torch.float64
    t, u = torch.tensor(p["t"], dtype=d), torch.tensor(p["u"], dtype=d)

    field = SpiralField(p)
    opt = torch.optim.Adam(field.parameters(), lr=float(p["lr"]))
    fixed = workload == "fixed"
    i_ctl = dict(alpha=1.0, beta=0.0) if side == I_CONTROLLER else {}
    step_ctl = odeflow.FixedStep() if fixed else odeflow.Adaptive(rtol=1e-7, atol=1e-9, **i_ctl)
    method = "tsit5" if fixed else "dopri5"
    gradient = odeflow.DiscretizeOptimize() if fixed else odeflow.OptimizeDiscretize()
    last: Dict[str, odeflow.SolverStats] = {}

    def predict():
        if side == "torchdiffeq":
            import torchdiffeq

            if fixed:
                return torchdiffeq.odeint(field, u[0], t, method="rk4")
            return torchdiffeq.odeint_adjoint(field, u[0], t, method="dopri5", rtol=1e-7, atol=1e-9)
        sol = odeflow.solve(field, u[0], t, method=method, step=step_ctl, gradient=gradient, compile=side != "odeflow")
        last["stats"] = sol.stats  # read after the backward pass, which adds nfe_backward
        return sol.ys

    def loss_fn() -> torch.Tensor:
        return (predict() - u).pow(2).sum()

    def stats():
        """The last solve's statistics, with the forward solve's largest error at the final
        weights against dopri8 at rtol 1e-13 (what the step count buys)."""
        if not last:
            return None
        trained = last["stats"]
        with torch.no_grad():
            ys = predict()
            ref = odeflow.solve(field, u[0], t, method="dopri8", step=odeflow.Adaptive(rtol=1e-13, atol=1e-14)).ys
        trained.forward_error = float((ys - ref).abs().max())  # type: ignore[attr-defined]
        return trained

    return training_step(side, loss_fn, opt), stats


def torch_side(problem_path: str, side: str, workload: str, iterations: int) -> dict:
    """One torch side in this process; returns its measurements."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    p = dict(np.load(problem_path))
    run, get_stats = cnf_side(p, side) if workload == "cnf" else spiral_side(p, side, workload)
    return _measure(run, get_stats, iterations)


def _measure(run, get_stats, iterations: int) -> dict:
    """First call (compile) and median ms per later call of a training step."""
    start = time.perf_counter()
    run()
    first = time.perf_counter() - start
    times: List[float] = []
    loss = torch.zeros(())
    for _ in range(iterations):
        start = time.perf_counter()
        loss = run()
        times.append(time.perf_counter() - start)
    stats = get_stats()
    return {
        "ms_per_iter": 1e3 * statistics.median(times),
        "first_call_s": first,
        "forward_steps": stats.accepted if stats else None,
        "nfe": stats.nfe if stats else None,
        "nfe_backward": stats.nfe_backward if stats else None,
        "forward_error": getattr(stats, "forward_error", None),
        "final_loss": float(loss),
    }


def _sci(x) -> str:
    return "" if x is None else f"{x:.1e}"


def run_side(side: str, workload: str, problem: Path, iterations: int, jax_python: str, cache: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ODEFLOW_CACHE_DIR": cache, "PYTHONUNBUFFERED": "1"}
    if side == "diffrax":
        cmd = [jax_python, str(HERE / "peers_jax.py"), str(problem), workload, str(iterations)]
    else:
        cmd = [sys.executable, __file__, "--side", side, "--workload", workload, "--problem", str(problem)]
        cmd += ["--iterations", str(iterations)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, preexec_fn=lambda: os.sched_setaffinity(0, {0}))
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jax-python", default=os.environ.get("ODEFLOW_BENCH_JAX_PYTHON", ".venv-jax/bin/python"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--workloads", default="fixed,adjoint,cnf")
    ap.add_argument("--sides", default=",".join(SIDES))
    ap.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="odeflow sides call odeflow.keep_freed_memory() first, as `odeflow train` does when it compiles",
    )
    ap.add_argument("--side", help=argparse.SUPPRESS)
    ap.add_argument("--workload", help=argparse.SUPPRESS)
    ap.add_argument("--problem", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side:  # a child process: one side, one workload
        if os.environ.get("ODEFLOW_BENCH_KEEP_FREED") == "1" and args.side.startswith("odeflow"):
            import odeflow

            odeflow.keep_freed_memory()
        out = torch_side(args.problem, args.side, args.workload, args.iterations)
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(out))
        return
    if args.keep_freed_memory:
        os.environ["ODEFLOW_BENCH_KEEP_FREED"] = "1"  # read by the odeflow children
    tmp = Path(tempfile.mkdtemp(prefix="odeflow-peers-"))
    problem = tmp / "problem.npz"
    write_problem(problem)
    cache = str(tmp / "cache")
    sides = args.sides.split(",")
    results: Dict[str, Dict[str, List[dict]]] = {}
    for r in range(args.rounds):
        for workload in args.workloads.split(","):
            for side in sides:
                res = run_side(side, workload, problem, args.iterations, args.jax_python, cache)
                res["round"] = r + 1
                results.setdefault(workload, {}).setdefault(side, []).append(res)
                print(workload, side, json.dumps(res), file=sys.stderr, flush=True)
    print(f"\nms per training iteration, median of {args.iterations} after the first call; rounds: {args.rounds}\n")
    print(
        "| workload | side | ms/iter (per round) | ratio to diffrax (per round) | first call s (cold, warm) | steps | NFE fwd/bwd | forward error | peak RSS MB | final loss |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for workload, by_side in results.items():
        ref = [x.get("ms_per_iter") for x in by_side.get("diffrax", [])]
        for side, runs in by_side.items():
            if any("error" in x for x in runs):
                print(f"| {workload} | {side} | error: {runs[0].get('error', runs[-1].get('error'))} | | | | | | | |")
                continue
            ms = [x["ms_per_iter"] for x in runs]
            ratios = [a / b for a, b in zip(ms, ref) if b] if ref else []
            first = [x["first_call_s"] for x in runs]
            r0 = runs[-1]
            print(
                f"| {workload} | {side} | {', '.join(f'{m:.2f}' for m in ms)} | "
                f"{', '.join(f'{q:.2f}x' for q in ratios)} | {first[0]:.1f}, {min(first[1:], default=first[0]):.1f} | "
                f"{r0.get('forward_steps')} | {r0.get('nfe')}/{r0.get('nfe_backward')} | "
                f"{_sci(r0.get('forward_error'))} | {r0['peak_rss_mb']:.0f} | "
                f"{r0['final_loss']:.4g} |"
            )
    (tmp / "results.json").write_text(json.dumps(results, indent=1))
    print(f"\nraw results: {tmp / 'results.json'}")


if __name__ == "__main__":
    main()
