"""Stiff problems: odeflow's implicit methods against scipy's Radau/BDF (accuracy vs time),
and the step counts an explicit method needs on the same problems.

    PYTHONPATH=src python benchmarks/stiff.py [--quick]

Problems: Robertson's chemical kinetics on [0, 40] and Van der Pol with mu = 1000 on [0, 2]
(reference: scipy Radau with rtol = atol = 1e-12). torchdiffeq 0.2.5 has no implicit methods,
so its entry is dopri5 (capped at --max-steps attempted steps). The last table trains a
stiff linear neural ODE y' = -K (y - W u(t)) for a few iterations with radauIIA5 and with
dopri5 and reports the evaluations per iteration.
"""

from __future__ import annotations

import argparse
import time
from typing import Callable, Dict, List, Tuple

import numpy as np
import torch

import odeflow

D = torch.float64


def robertson_np(t, y):
    return [-0.04 * y[0] + 1e4 * y[1] * y[2], 0.04 * y[0] - 1e4 * y[1] * y[2] - 3e7 * y[1] ** 2, 3e7 * y[1] ** 2]


def robertson(t, y):
    a, b, c = y.unbind(-1)
    return torch.stack([-0.04 * a + 1e4 * b * c, 0.04 * a - 1e4 * b * c - 3e7 * b * b, 3e7 * b * b], -1)


def vdp_np(mu):
    return lambda t, y: [y[1], mu * (1 - y[0] ** 2) * y[1] - y[0]]


def vdp(mu):
    return lambda t, y: torch.stack([y[..., 1], mu * (1 - y[..., 0] ** 2) * y[..., 1] - y[..., 0]], -1)


PROBLEMS: Dict[str, Tuple[Callable, Callable, List[float], float]] = {
    "Robertson [0, 40]": (robertson, robertson_np, [1.0, 0.0, 0.0], 40.0),
    "Van der Pol mu=1000 [0, 2]": (vdp(1000.0), vdp_np(1000.0), [2.0, 0.0], 2.0),
}


def reference(f_np, y0, t_end):
    from scipy.integrate import solve_ivp

    return np.array(solve_ivp(f_np, (0, t_end), y0, method="Radau", rtol=1e-12, atol=1e-12).y[:, -1])


def rel_err(y, ref):
    return float(np.max(np.abs(y - ref) / (np.abs(ref) + 1e-6)))


def run_scipy(method, f_np, y0, t_end, rtol):
    from scipy.integrate import solve_ivp

    start = time.perf_counter()
    sol = solve_ivp(f_np, (0, t_end), y0, method=method, rtol=rtol, atol=rtol * 1e-4)
    return time.perf_counter() - start, sol.y[:, -1], sol.nfev, len(sol.t) - 1


def run_odeflow(method, f, y0, t_end, rtol, max_steps):
    t = torch.tensor([0.0, t_end], dtype=D)
    start = time.perf_counter()
    try:
        with torch.no_grad():
            sol = odeflow.solve(
                f,
                torch.tensor(y0, dtype=D),
                t,
                method=method,
                step=odeflow.Adaptive(rtol, rtol * 1e-4, max_steps=max_steps),
            )
    except odeflow.SolverError as e:
        return time.perf_counter() - start, None, None, f"failed: {e.reason}"
    return time.perf_counter() - start, sol.ys[-1].numpy(), sol.stats.nfe, sol.stats.accepted


def run_torchdiffeq(f, y0, t_end, rtol, max_steps):
    import torchdiffeq

    t = torch.tensor([0.0, t_end], dtype=D)
    start = time.perf_counter()
    try:
        with torch.no_grad():
            out = torchdiffeq.odeint(
                f, torch.tensor(y0, dtype=D), t, rtol=rtol, atol=rtol * 1e-4, options=dict(max_num_steps=max_steps)
            )
    except AssertionError:
        return time.perf_counter() - start, None, None, f"failed: > {max_steps} steps"
    return time.perf_counter() - start, out[-1].numpy(), None, None


def accuracy_tables(rtols, max_steps):
    f, _, y0, _ = PROBLEMS["Van der Pol mu=1000 [0, 2]"]
    for m in ("radauIIA5", "radauIIA3", "sdirk2", "trbdf2", "dopri5"):  # one-time set-up (autograd's vmap) untimed
        run_odeflow(m, f, y0, 0.1, 1e-3, 20000)
    for name, (f, f_np, y0, t_end) in PROBLEMS.items():
        ref = reference(f_np, y0, t_end)
        print(f"\n### {name}\n\n| solver | rtol | time s | max rel. error | NFE | steps |\n|---|---|---|---|---|---|")
        for rtol in rtols:
            rows = [(f"scipy {m}", run_scipy(m, f_np, y0, t_end, rtol)) for m in ("Radau", "BDF")]
            rows += [
                (f"odeflow {m}", run_odeflow(m, f, y0, t_end, rtol, 20000))
                for m in ("radauIIA5", "radauIIA3", "sdirk2", "trbdf2")
            ]
            rows.append(("odeflow dopri5 (explicit)", run_odeflow("dopri5", f, y0, t_end, rtol, max_steps)))
            rows.append(("torchdiffeq dopri5 (explicit)", run_torchdiffeq(f, y0, t_end, rtol, max_steps)))
            for label, (sec, y, nfe, steps) in rows:
                err = "–" if y is None else f"{rel_err(np.asarray(y), ref):.1e}"
                print(
                    f"| {label} | {rtol:.0e} | {sec:.3f} | {err} | {nfe if nfe is not None else '–'} | "
                    f"{steps if steps is not None else '–'} |"
                )


class StiffLinear(torch.nn.Module):
    """y' = -K (y - W u(t)), K = diag(1, 1e3): a fast component that relaxes onto W u(t)."""

    def __init__(self):
        super().__init__()
        self.k = torch.tensor([1.0, 1e3], dtype=D)
        self.w = torch.nn.Parameter(torch.tensor([[0.5, -0.2], [0.1, 0.3]], dtype=D))

    def forward(self, t, y):
        u = torch.stack([torch.sin(t), torch.cos(t)]).to(D)
        return -self.k * (y - self.w @ u)


def training_table(iterations):
    torch.manual_seed(0)
    t = torch.linspace(0, 3, 16, dtype=D)
    target_model = StiffLinear()
    with torch.no_grad():
        target_model.w.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=D))
        target = odeflow.solve(
            target_model, torch.zeros(2, dtype=D), t, method="radauIIA5", step=odeflow.Adaptive(1e-8, 1e-10)
        ).ys
    print(
        "\n### Stiff neural-ODE training (y' = -K (y - W u(t)), K = diag(1, 1e3), 16 outputs on [0, 3], "
        "Adam lr 0.05, discretize-optimize, rtol 1e-5)\n\n| method | NFE / iter | steps / iter | ms / iter | "
        "final loss |\n|---|---|---|---|---|"
    )
    for method in ("radauIIA5", "dopri5"):
        model = StiffLinear()
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        nfe = steps = 0
        start = time.perf_counter()
        for _ in range(iterations):
            sol = odeflow.solve(model, torch.zeros(2, dtype=D), t, method=method, step=odeflow.Adaptive(1e-5, 1e-7))
            loss = (sol.ys - target).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            nfe += sol.stats.nfe
            steps += sol.stats.steps
        ms = (time.perf_counter() - start) / iterations * 1e3
        print(
            f"| {method} | {nfe / iterations:.0f} | {steps / iterations:.0f} | {ms:.0f} | {float(loss.detach()):.2e} |"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="one tolerance, few training iterations")
    p.add_argument("--max-steps", type=int, default=20000, help="cap on the explicit solvers' steps")
    args = p.parse_args()
    torch.set_num_threads(1)
    accuracy_tables([1e-4] if args.quick else [1e-4, 1e-6, 1e-8], args.max_steps)
    training_table(5 if args.quick else 30)


if __name__ == "__main__":
    main()
