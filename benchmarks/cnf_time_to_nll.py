"""Issue 18 item 1: wall time for a CNF on 8gaussians to first reach a test NLL of 3.15 nats,
odeflow's recipes against the FFJORD recipe run with torchdiffeq.

FFJORD side (Grathwohl et al. 2019, `train_toy.py`, written here from the paper's description):
FFJORD's toy net (64-64-64 concatsquash, tanh; the same `ODENet` module, the same initial
weights), T = 0.5, state (z, delta log p) with d(delta log p)/dt = -e^T (df/dz) e (Hutchinson,
Gaussian e drawn once per solve), `torchdiffeq.odeint_adjoint` dopri5 rtol = atol = 1e-5 (its
default adjoint: the same tolerances, error norm over all adjoint states), Adam lr 1e-3 with
FFJORD's weight decay 1e-5, batch 512, loss = mean -log p(x). The VJP builds a graph only when
the solve needs one (the adjoint's backward), not in the no-grad forward solve as FFJORD's code
does: that only makes the baseline faster.

odeflow side: `train_cnf`'s Trainer on a named recipe (configs/cnf_fast.toml, or the combined
recipe of `make demo`), unchanged except that its validation uses the shared evaluator.

Both sides: the same training batches (the Trainer's per-iteration seeds), the same seed, one
thread, training-time clock only (batch drawing and validation excluded), and every `k`
iterations the SAME evaluator: exact-trace NLL with dopri5 rtol = atol = 1e-5 on one fixed test
set (`test_nll`). Reported: wall time and iterations to the first test NLL <= target, ms/iter,
NFE per iteration, the ratio, and a final evaluation (`evaluate_flow`, dopri5 1e-5, exact
trace, inverse error) on a second held-out set. The runs go one after another in this process.

Usage: PYTHONPATH=src python benchmarks/cnf_time_to_nll.py [--recipes fast combined] [--skip-ffjord]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
from torch import Tensor, nn

from odeflow.data.toy2d import sample_toy
from odeflow.flows import CNF
from odeflow.nn import ODENet
from odeflow.solvers.stepping import Adaptive
from odeflow.tasks.cnf2d import CNF2DTask, CNFConfig, evaluate_flow, nll_per_sample
from odeflow.training import Trainer
from odeflow.training.data import iteration_seed

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _timing import TrainingCPUClock, machine  # noqa: E402

DOPRI5 = Adaptive(1e-5, 1e-5)


# ---------------------------------------------------------------------------------------------
# The shared evaluator
def test_nll(flow: CNF, x: Tensor) -> float:
    """Mean -log p(x) with the exact trace and dopri5 rtol = atol = 1e-5 (odeflow's solver)."""
    return float(nll_per_sample(flow, x, "dopri5", DOPRI5).mean())


def as_flow(net: nn.Module, T: float) -> CNF:
    """An odeflow CNF around a trained net, for the shared evaluator."""
    return CNF(net, 2, T=T, divergence="exact", method="dopri5", step=DOPRI5).to(next(net.parameters()).device)


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def batch_of(data: str, batch: int, seed: int, it: int) -> Tensor:
    """The Trainer's batch for iteration `it` (one process)."""
    return sample_toy(data, batch, seed=iteration_seed(seed, it))


# ---------------------------------------------------------------------------------------------
# FFJORD with torchdiffeq
class HutchinsonODEfunc(nn.Module):
    """(z, delta log p)' = (f, -e^T J e); e fixed within one solve (FFJORD's ODEfunc)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.e: Optional[Tensor] = None
        self.nfe = 0

    def forward(self, t: Tensor, states):
        z = states[0]
        self.nfe += 1
        create = torch.is_grad_enabled()  # True inside torchdiffeq's adjoint backward only
        with torch.enable_grad():
            if not z.requires_grad:
                z = z.requires_grad_(True)
            f = self.net(t, z)
            (eJ,) = torch.autograd.grad(f, z, self.e, create_graph=create)
            div = (eJ * self.e).sum(dim=1)
        return (f, -div) if create else (f.detach(), -div.detach())


def ffjord_run(args, x_test: Tensor, x_final: Tensor) -> Dict[str, Any]:
    from torchdiffeq import odeint_adjoint

    torch.manual_seed(args.seed)
    net = ODENet(2, [64, 64, 64], layer="concatsquash", activation="tanh").to(args.device)
    func = HutchinsonODEfunc(net)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-5)
    times = torch.tensor([0.0, 0.5], device=args.device)
    torch.manual_seed(args.seed)
    elapsed, cpu, hit, hit_cpu, curve, nfe_f, nfe_b = 0.0, 0.0, None, None, [], 0, 0
    it = 0
    for it in range(args.ffjord_max_iterations):
        x = batch_of(args.data, args.ffjord_batch, args.seed, it).to(args.device)
        synchronize(args.device)
        start, start_cpu = time.perf_counter(), time.process_time()
        opt.zero_grad(set_to_none=True)
        func.e = torch.randn_like(x)
        func.nfe = 0
        zT, dlogp = odeint_adjoint(
            func, (x, torch.zeros(x.shape[0], device=x.device)), times, rtol=1e-5, atol=1e-5, method="dopri5"
        )
        nfe_f += func.nfe
        func.nfe = 0
        logpz = -0.5 * (2 * torch.log(torch.tensor(2 * torch.pi)) + (zT[-1] ** 2).sum(dim=1))
        loss = -(logpz - dlogp[-1]).mean()  # log p(x) = log N(z(T)) + int tr J dt = logpz - dlogp(T)
        loss.backward()
        opt.step()
        synchronize(args.device)
        elapsed += time.perf_counter() - start
        cpu += time.process_time() - start_cpu
        nfe_b += func.nfe
        if (it + 1) % args.val_every == 0:
            nll = test_nll(as_flow(net, 0.5), x_test.to(args.device))
            curve.append((it + 1, elapsed, nll))
            print(f"  ffjord it {it + 1}: {elapsed:.1f} s, test NLL {nll:.3f}", flush=True)
            if nll <= args.target:
                hit, hit_cpu = (it + 1, elapsed), cpu
                break
            if elapsed > args.ffjord_budget:
                break
    n = it + 1
    final = evaluate_flow(as_flow(net, 0.5), x_final.to(args.device), "dopri5", DOPRI5)
    return dict(
        name="ffjord (torchdiffeq)",
        iterations=n,
        seconds=elapsed,
        hit=hit,
        hit_cpu=hit_cpu,
        ms_per_iter=1e3 * elapsed / n,
        nfe_forward=nfe_f / n,
        nfe_backward=nfe_b / n,
        curve=curve,
        final=final,
        T=0.5,
    )


# ---------------------------------------------------------------------------------------------
# odeflow recipes
def recipe(name: str) -> Dict[str, Any]:
    if name == "combined":  # `make demo`'s CNF (cli/demo.py), its first 400 of 1,500 iterations
        return dict(
            mode="disc-opt",
            method="rk4",
            n_steps=4,
            divergence="exact",
            batch=256,
            kinetic=0.01,
            jacobian=0.01,
            zero_init=True,
            learn_T=True,
            iterations=400,
            lr=1e-3,
            schedule=[dict(until=300, method="rk4", steps=2, lr=1e-3), dict(until=301, method="rk4", steps=4, lr=5e-4)],
        )
    path = ROOT / "configs" / f"cnf_{name}.toml"
    if not path.is_file():
        raise ValueError(f"unknown recipe {name!r}: neither 'combined' nor {path}")
    import tomllib

    return tomllib.loads(path.read_text())


class _SharedEvaluatorTask(CNF2DTask):
    """The cnf task, validated with `test_nll` on the shared test set. It also adds up the CPU
    time (`time.process_time`) from the end of each batch draw to the start of the next
    iteration, less the validations: the Trainer's timed span plus its metrics row."""

    def __init__(self, cfg: CNFConfig, x_test: Tensor) -> None:
        super().__init__(cfg)
        self.x_test = x_test
        self.clock = TrainingCPUClock()

    def before_iteration(self, iteration: int, ctx) -> None:
        self.clock.iteration_starts()
        super().before_iteration(iteration, ctx)

    def batch(self, iteration: int, ctx) -> Tensor:
        x = super().batch(iteration, ctx)
        self.clock.batch_drawn()
        return x

    def validate(self, ctx) -> Dict[str, float]:
        with self.clock.validating(ctx.iteration + 1):
            return dict(val_nll=test_nll(self.flow, self.x_test.to(ctx.device)))


def odeflow_run(name: str, args, x_test: Tensor, x_final: Tensor, overrides: Dict[str, Any]) -> Dict[str, Any]:
    settings = dict(
        recipe(name),
        data=args.data,
        seed=args.seed,
        val_every=args.val_every,
        val_size=len(x_test),
        checkpoint_every=10**9,
        device=args.device,
        cuda_graph=args.cuda_graph,
    )
    settings.update(overrides)
    cfg = CNFConfig(**settings)
    cfg.validate()
    trainer = Trainer(_SharedEvaluatorTask(cfg, x_test), None, quiet=True)
    s = trainer.fit()
    rows = trainer.history
    curve = [(r["iteration"] + 1, r["wall_time"], r["val_nll"]) for r in rows if "val_nll" in r]
    if getattr(args, "verbose", True):
        for c in curve:
            print(f"  {name} it {c[0]}: {c[1]:.2f} s, test NLL {c[2]:.3f}", flush=True)
    hit = next(((i, t) for i, t, v in curve if v <= args.target), None)
    hit_cpu = trainer.task.clock.at_validation[hit[0]] if hit else None
    flow = trainer.task.flow
    final = evaluate_flow(flow, x_final.to(args.device), "dopri5", DOPRI5)
    n = s["iterations"]
    return dict(
        name=name,
        iterations=n,
        seconds=s["train_seconds"],
        hit=hit,
        hit_cpu=hit_cpu,
        ms_per_iter=s["ms_per_iter"],
        nfe_forward=sum(r["nfe_forward"] for r in rows) / n,
        nfe_backward=sum(r["nfe_backward"] for r in rows) / n,
        curve=curve,
        final=final,
        T=float(flow.T.detach()),
        config=settings,
    )


def table(results: List[Dict[str, Any]], target: float) -> str:
    base = next((r for r in results if r["name"].startswith("ffjord")), None)
    lines = [
        f"| recipe | wall time to NLL <= {target} (s) | CPU time to it (s) | iterations to it | ms/iter | "
        "NFE-F / NFE-B per iter | speed-up (wall) | speed-up (CPU) | iterations run | "
        "final test NLL (dopri5 1e-5, exact) | inverse error | T |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        hit = r["hit"]
        ok = hit and base and base["hit"]
        speed = f"{base['hit'][1] / hit[1]:.1f}x | {base['hit_cpu'] / r['hit_cpu']:.1f}x" if ok else "– | –"
        lines.append(
            f"| {r['name']} | {hit[1]:.2f} | {r['hit_cpu']:.2f} | {hit[0]} | "
            if hit
            else f"| {r['name']} | not reached | – | – | "
        )
        lines[-1] += (
            f"{r['ms_per_iter']:.1f} | {r['nfe_forward']:.1f} / {r['nfe_backward']:.1f} | {speed} | "
            f"{r['iterations']} | {r['final']['nll']:.3f} | {r['final']['inverse_error']:.1e} | {r['T']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="8gaussians")
    p.add_argument("--target", type=float, default=3.15)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-every", type=int, default=10)
    p.add_argument("--test-size", type=int, default=2048)
    p.add_argument("--recipes", nargs="*", default=["fast", "combined"])
    p.add_argument("--skip-ffjord", action="store_true")
    p.add_argument("--ffjord-batch", type=int, default=512)
    p.add_argument("--ffjord-budget", type=float, default=300.0, help="stop the baseline after this much training")
    p.add_argument("--ffjord-max-iterations", type=int, default=5000)
    p.add_argument("--set", nargs="*", default=[], help="recipe overrides key=json-value (exploration)")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="both sides on this device")
    p.add_argument("--cuda-graph", action="store_true", help="odeflow's recipes with --cuda-graph (GPU)")
    args = p.parse_args()
    torch.set_num_threads(1)
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    x_test = sample_toy(args.data, args.test_size, seed=10_000 + args.seed)
    x_final = sample_toy(args.data, args.test_size, seed=20_000 + args.seed)
    card = f"; device {torch.cuda.get_device_name()}" if args.device == "cuda" else ""
    print(f"{machine()}{card}; load average at start {os.getloadavg()}", flush=True)
    results = []
    for name in args.recipes:
        results.append(odeflow_run(name, args, x_test, x_final, overrides))
        print(table(results, args.target), flush=True)
    if not args.skip_ffjord:
        results.append(ffjord_run(args, x_test, x_final))
    print(f"load average at end {os.getloadavg()}")
    text = table(results, args.target)
    print(text)
    if args.json is not None:
        args.json.write_text(
            json.dumps(dict(results=results, load_end=os.getloadavg(), machine=machine()), indent=1, default=str)
        )


if __name__ == "__main__":
    main()
