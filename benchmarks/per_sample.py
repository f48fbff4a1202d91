"""Per-sample stepping against torchode and a shared step: sample-steps and wall time, side by side.

Batches of heterogeneous problems, dopri5, rtol 1e-6, atol 1e-8, float64, 50 outputs, one thread:

- vdp: Van der Pol x'' = mu (1 - x^2) x' - x, mu spread evenly over [0.5, 8], x(0) = 2, t in [0, 10];
- lotka: Lotka-Volterra with a, b, d, g drawn in [0.5, 1.5] (seed 0), x(0) = y(0) = 1, t in [0, 15];
- mlp: a neural vector field f(t, y) = s_b W2 tanh(W1 [y, t] + b1) + b2 (16 -> 128 -> 16, random
  weights, seed 0) with a time scale s_b spread evenly over [0.2, 4] per sample, y(0) ~ N(0, 1),
  t in [0, 2]: evaluations cost more than the per-step bookkeeping (a CNF's or latent ODE's rows).

Sides (all in this one process, interleaved by `_timing.time_side_by_side`): odeflow's shared
step (`solve` without per_sample: every sample takes the hardest sample's steps), odeflow
``per_sample=True``, odeflow ``per_sample=PerSample(compact=0.5)``, odeflow ``per_sample=True,
compile=True`` (every attempted step of all rows one compiled call), torchode 1.0.1 (per-sample
steps; PID controller with pcoeff 0.4, icoeff 0.3: odeflow's PI constants alpha 0.7, beta 0.4)
and torchdiffeq's shared step. "first call s" is each side's first call (for compile=True: the
compile, or the load from the cache directory when an earlier run left it there). "sample-steps" is the sum over samples of the accepted steps
each sample took (a shared step counts its steps once per sample).

With ``--grad`` each side also backpropagates a loss sum(w * ys) to y0 and the problem's
parameters: odeflow's shared step and per_sample=True by backpropagation through the steps,
per_sample=True with the continuous adjoint (OptimizeDiscretize(seminorm=True), every sample
its own backward steps), per_sample=True with compile=True (backpropagation through the
compiled steps), torchode's AutoDiffAdjoint (backpropagation through its steps).

With ``--implicit``: stiff Van der Pol (mu spread evenly over ``--mu`` [1, 200], x(0) = 2, t in
[0, 2], 20 outputs) with ``--method`` radauIIA5 at rtol 1e-5, atol 1e-7: odeflow's shared step
(row-blocked Jacobian, jacobian='batched') against per_sample=True (torchode has no implicit
methods), in CPU time (time.process_time, interleaved); with ``--grad`` also the gradient of
sum(w * ys) in mu by backpropagation (shared and per-sample) and by the per-sample adjoint.

    python benchmarks/per_sample.py [--batches 32 256 1024 4096] [--repeats 3] [--grad] [--implicit [--mu 10 1000] [--compile]]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Tuple

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import cpu_side_by_side, machine, time_side_by_side  # noqa: E402

import odeflow  # noqa: E402
from odeflow.gradients import OptimizeDiscretize  # noqa: E402
from odeflow.solvers.per_sample import PerSample  # noqa: E402
from odeflow.solvers.stepping import Adaptive  # noqa: E402

D = torch.float64
RTOL, ATOL = 1e-6, 1e-8


def problem(name: str, batch: int, grad: bool = False) -> Tuple[Callable, torch.Tensor, torch.Tensor]:
    """(f(t, y[, rows]) for t [B] or 0-d, y0 [B, d], t [50]); rows: the batch rows of y (compaction).
    With ``grad`` the parameters (f.params) and y0 require gradients."""
    if name == "vdp":
        mu = torch.linspace(0.5, 8.0, batch, dtype=D).requires_grad_(grad)

        def vdp(t, y, rows=None):
            m = mu if rows is None else mu[rows]
            x, v = y[..., 0], y[..., 1]
            return torch.stack([v, m * (1 - x * x) * v - x], -1)

        y0 = torch.tensor([2.0, 0.0], dtype=D).repeat(batch, 1).requires_grad_(grad)
        vdp.params = (mu,)  # type: ignore[attr-defined]
        return vdp, y0, torch.linspace(0, 10, 50, dtype=D)
    p = (0.5 + torch.rand(batch, 4, generator=torch.Generator().manual_seed(0), dtype=D)).requires_grad_(grad)

    def lotka(t, y, rows=None):
        a, b, d, g = (p if rows is None else p[rows]).unbind(-1)
        x, z = y[..., 0], y[..., 1]
        return torch.stack([a * x - b * x * z, d * x * z - g * z], -1)

    if name == "mlp":
        return _mlp(batch, grad)
    lotka.params = (p,)  # type: ignore[attr-defined]
    return lotka, torch.ones(batch, 2, dtype=D).requires_grad_(grad), torch.linspace(0, 15, 50, dtype=D)


def _mlp(batch: int, grad: bool) -> Tuple[Callable, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    w1 = (torch.randn(17, 128, generator=g, dtype=D) / 17**0.5).requires_grad_(grad)
    b1 = torch.zeros(128, dtype=D).requires_grad_(grad)
    w2 = (torch.randn(128, 16, generator=g, dtype=D) / 128**0.5).requires_grad_(grad)
    scale = torch.linspace(0.2, 4.0, batch, dtype=D)

    def mlp(t, y, rows=None):
        s = scale if rows is None else scale[rows]
        tt = t.reshape(-1, 1).expand(y.shape[0], 1) if t.dim() else t.expand(y.shape[0], 1)
        return s[:, None] * (torch.tanh(torch.cat([y, tt], -1) @ w1 + b1) @ w2)

    mlp.params = (w1, b1, w2)  # type: ignore[attr-defined]
    y0 = torch.randn(batch, 16, generator=g, dtype=D).requires_grad_(grad)
    return mlp, y0, torch.linspace(0, 2, 50, dtype=D)


def grad_sides(
    f: Callable, y0: torch.Tensor, t: torch.Tensor
) -> Dict[str, Callable[[], Tuple[torch.Tensor, int, int]]]:
    """Each side: a call returning (the gradient of sum(w * ys) in (y0, params) flattened,
    sample-steps forward, batched evaluations forward and backward)."""
    import torchode as to

    batch = y0.shape[0]
    step = Adaptive(rtol=RTOL, atol=ATOL)
    params = f.params  # type: ignore[attr-defined]
    w = torch.randn(len(t), *y0.shape, generator=torch.Generator().manual_seed(1), dtype=D)

    def grads(ys: torch.Tensor) -> torch.Tensor:
        return torch.cat([g.reshape(-1) for g in torch.autograd.grad((ys * w).sum(), (y0, *params))])

    def odeflow_side(per_sample: bool, gradient: object = None, compile: bool = False):
        def run():
            sol = odeflow.solve(f, y0, t, step=step, per_sample=per_sample, gradient=gradient, compile=compile)
            g = grads(sol.ys)
            steps = sol.stats.accepted * (1 if per_sample is not False else batch)
            return g, steps, sol.stats.nfe + sol.stats.nfe_backward

        return run

    term = to.ODETerm(f)
    solver = to.AutoDiffAdjoint(
        to.Dopri5(term=term), to.PIDController(atol=ATOL, rtol=RTOL, pcoeff=0.4, icoeff=0.3, dcoeff=0.0, term=term)
    )
    t_eval = t.unsqueeze(0).expand(batch, -1)

    def torchode():
        sol = solver.solve(to.InitialValueProblem(y0=y0, t_eval=t_eval))
        return grads(sol.ys.transpose(0, 1)), int(sol.stats["n_accepted"].sum()), int(sol.stats["n_f_evals"].max())

    return {
        "odeflow shared step, backprop": odeflow_side(False),
        "odeflow per_sample, backprop": odeflow_side(True),
        "odeflow per_sample, adjoint": odeflow_side(True, OptimizeDiscretize(params=params, seminorm=True)),
        "odeflow per_sample compile, backprop": odeflow_side(True, None, True),
        "torchode": torchode,
    }


def sides(f: Callable, y0: torch.Tensor, t: torch.Tensor) -> Dict[str, Callable[[], Tuple[torch.Tensor, int, int]]]:
    """Each side: a call returning (ys [T, B, 2], sample-steps, batched evaluations)."""
    import torchdiffeq
    import torchode as to

    batch = y0.shape[0]
    step = Adaptive(rtol=RTOL, atol=ATOL)

    def shared():
        sol = odeflow.solve(f, y0, t, step=step)
        return sol.ys, sol.stats.accepted * batch, sol.stats.nfe

    def per_sample(options: object = True, compile: bool = False):
        sol = odeflow.solve(f, y0, t, step=step, per_sample=options, compile=compile)
        return sol.ys, sol.stats.accepted, sol.stats.nfe

    term = to.ODETerm(f)
    solver = to.AutoDiffAdjoint(
        to.Dopri5(term=term), to.PIDController(atol=ATOL, rtol=RTOL, pcoeff=0.4, icoeff=0.3, dcoeff=0.0, term=term)
    )
    t_eval = t.unsqueeze(0).expand(batch, -1)

    def torchode():
        sol = solver.solve(to.InitialValueProblem(y0=y0, t_eval=t_eval))
        return sol.ys.transpose(0, 1), int(sol.stats["n_accepted"].sum()), int(sol.stats["n_f_evals"].max())

    def torchdiffeq_shared():
        counter = [0]

        def counted(tt, y):
            counter[0] += 1
            return f(tt, y)

        ys = torchdiffeq.odeint(counted, y0, t, rtol=RTOL, atol=ATOL, method="dopri5")
        return ys, -1, counter[0]

    return {
        "odeflow shared step": shared,
        "odeflow per_sample": per_sample,
        "odeflow per_sample compact=0.5": lambda: per_sample(PerSample(compact=0.5)),
        "odeflow per_sample compile": lambda: per_sample(True, True),
        "torchode": torchode,
        "torchdiffeq shared step": torchdiffeq_shared,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[32, 256, 1024, 4096])
    ap.add_argument("--problems", nargs="+", default=["vdp", "lotka"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--grad", action="store_true", help="forward and backward (gradients in y0 and parameters)")
    ap.add_argument("--implicit", action="store_true", help="stiff Van der Pol with an implicit method")
    ap.add_argument(
        "--compile",
        action="store_true",
        help="with --implicit: also the shared and per-sample steps with compile=True (Newton compiled)",
    )
    ap.add_argument("--method", default="radauIIA5", help="--implicit: the implicit method")
    ap.add_argument("--mu", type=float, nargs=2, default=[1.0, 200.0], help="--implicit: the range of mu")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.implicit:
        implicit_main(args)
        return
    if args.grad:
        grad_main(args)
        return
    print(f"# per-sample stepping, dopri5 rtol {RTOL} atol {ATOL}, float64; {machine()}")
    print(
        "| problem | batch | side | sample-steps | batched f evals | ms | ms / torchode | max |y - per_sample| "
        "| first call s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    with torch.no_grad():
        for name in args.problems:
            for batch in args.batches:
                f, y0, t = problem(name, batch)
                fns = sides(f, y0, t)
                first = {}
                results = {}
                for side, fn in fns.items():
                    start = time.perf_counter()
                    results[side] = fn()
                    first[side] = time.perf_counter() - start
                wall = time_side_by_side(fns, repeats=args.repeats, min_time=0.0)
                ref = results["odeflow per_sample"][0]
                for side, (ys, sample_steps, evals) in results.items():
                    diff = float((ys - ref).abs().max())
                    steps = "n/a" if sample_steps < 0 else f"{sample_steps:,}"
                    print(
                        f"| {name} | {batch} | {side} | {steps} | {evals} | {wall[side] * 1e3:.0f} | "
                        f"{wall[side] / wall['torchode']:.2f} | {diff:.1e} | {first[side]:.1f} |",
                        flush=True,
                    )


def implicit_main(args: argparse.Namespace) -> None:
    from odeflow.gradients import OptimizeDiscretize
    from odeflow.solvers.implicit import IMPLICIT_METHODS

    step = Adaptive(rtol=1e-5, atol=1e-7)
    method = args.method
    shared_method = IMPLICIT_METHODS[method].with_options(jacobian="batched")
    lo, hi = args.mu
    print(
        f"# per-sample implicit steps, stiff Van der Pol mu in [{lo:g}, {hi:g}], {method} rtol 1e-5 atol 1e-7, "
        f"float64, CPU ms (process_time, interleaved, median of {args.repeats}); {machine()}"
    )
    print(
        "| batch | side | sample-steps | batched f evals (fwd + bwd) | CPU ms | CPU / shared | max |y - per_sample| |"
    )
    print("|---|---|---|---|---|---|---|")
    for batch in args.batches:
        mu = torch.linspace(lo, hi, batch, dtype=D)

        def vdp(t, y, m=mu):
            x, v = y[..., 0], y[..., 1]
            return torch.stack([v, m * (1 - x * x) * v - x], -1)

        y0, t = torch.tensor([2.0, 0.0], dtype=D).repeat(batch, 1), torch.linspace(0, 2, 20, dtype=D)
        w = torch.randn(20, batch, 2, generator=torch.Generator().manual_seed(0), dtype=D)

        def run(per_sample, grad: str = "", compile: bool = False):
            m = mu.clone().requires_grad_(True) if grad else mu  # the same field every call: compiles once
            f = lambda tt, y: vdp(tt, y, m)  # noqa: E731
            if isinstance(per_sample, PerSample):  # compaction: f sees the running rows
                f = lambda tt, y, rows: vdp(tt, y, m[rows])  # noqa: E731
            gradient = OptimizeDiscretize(params=(m,), seminorm=True) if grad == "adjoint" else None
            kw = dict(gradient=gradient) if gradient is not None else {}
            meth = method if per_sample else shared_method
            with torch.set_grad_enabled(bool(grad)):
                sol = odeflow.solve(f, y0, t, method=meth, step=step, per_sample=per_sample, compile=compile, **kw)
                if grad:
                    torch.autograd.grad((sol.ys * w).sum(), m)
            steps = sol.stats.accepted * (1 if per_sample is not False else batch)
            return sol.ys.detach(), steps, sol.stats.nfe + sol.stats.nfe_backward

        fns = {
            "shared step": lambda: run(False),
            "per_sample": lambda: run(True),
            "per_sample compact=0.5": lambda: run(PerSample(compact=0.5)),
        }
        if args.compile:
            fns.update({"shared step compile=True": lambda: run(False, compile=True)})
            fns.update({"per_sample compile=True": lambda: run(True, compile=True)})
        if args.grad:
            fns.update(
                {
                    "shared step, backprop": lambda: run(False, "backprop"),
                    "per_sample, backprop": lambda: run(True, "backprop"),
                    "per_sample, adjoint": lambda: run(True, "adjoint"),
                }
            )
        results = {side: fn() for side, fn in fns.items()}
        cpu = cpu_side_by_side(fns, args.repeats)
        ref = results["per_sample"][0]
        for side, (ys, sample_steps, evals) in results.items():
            base = cpu["shared step, backprop" if "," in side else "shared step"]
            print(
                f"| {batch} | {side} | {sample_steps:,} | {evals} | {cpu[side] * 1e3:.0f} | "
                f"{cpu[side] / base:.2f} | {float((ys - ref).abs().max()):.1e} |",
                flush=True,
            )


def grad_main(args: argparse.Namespace) -> None:
    print(f"# per-sample gradients, dopri5 rtol {RTOL} atol {ATOL}, float64; {machine()}")
    print("| problem | batch | side | sample-steps (forward) | batched f evals (fwd + bwd) | ms | ms / torchode |")
    print("|---|---|---|---|---|---|---|")
    for name in args.problems:
        for batch in args.batches:
            f, y0, t = problem(name, batch, grad=True)
            fns = grad_sides(f, y0, t)
            results = {side: fn() for side, fn in fns.items()}
            wall = time_side_by_side(fns, repeats=args.repeats, min_time=0.0)
            ref = results["odeflow per_sample, backprop"][0]
            for side, (g, sample_steps, evals) in results.items():
                rel = float((g - ref).abs().max() / ref.abs().max())
                print(
                    f"| {name} | {batch} | {side} | {sample_steps:,} | {evals} | {wall[side] * 1e3:.0f} | "
                    f"{wall[side] / wall['torchode']:.2f} | (grad vs per_sample backprop: {rel:.1e}) |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
