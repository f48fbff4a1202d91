"""Issue 18 item 1, tabular part: time for a CNF on the built-in `digits` set (d = 64) to reach
a test NLL target, odeflow's tabular recipe against the FFJORD recipe run with torchdiffeq.

FFJORD side (Grathwohl et al. 2019, `train_tabular.py` settings, written here from the paper):
the Table-3-like net of configs/digits.toml (one block, 2 hidden concatsquash layers of 2·64,
softplus, T = 1; the same `ODENet` module and initial weights as odeflow's), Hutchinson trace
with Gaussian noise drawn once per solve, `torchdiffeq.odeint_adjoint` dopri5 rtol 1e-6,
atol 1e-8 (FFJORD's tabular tolerances), Adam lr 1e-3 with FFJORD's tabular weight decay 1e-6,
batch 200 (digits.toml). The VJP builds a graph only inside the adjoint's backward.

odeflow side: `odeflow train tabular --data digits --mode disc-opt` as configs/digits.toml
sets it (rk4 h = 0.25, Hutchinson, batch 200), or a named variant, through the Trainer.

Both: the same shuffled epochs (`EpochBatches`), the same seed, float32, one thread, training
clock only, and every `--val-every` iterations the SAME evaluator: exact-trace NLL with
dopri5 rtol 1e-6 / atol 1e-8 (odeflow's solver) on the 179 test rows. The target is the best
test NLL the FFJORD run reached within its training budget. The FFJORD run goes first.

Usage: PYTHONPATH=src python benchmarks/tabular_time_to_nll.py [--ffjord-budget S] [--odeflow-budget S]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import torch
from torch import Tensor

from odeflow.data.tabular import load_tabular
from odeflow.flows.cnf import CNFStack
from odeflow.flows.stacked import evaluate_stack, nll_per_sample
from odeflow.solvers.stepping import Adaptive
from odeflow.tasks.tabular import TabularTask, build_tabular_flow, read_tabular_config
from odeflow.training import Trainer
from odeflow.training.data import EpochBatches
from odeflow.training.distributed import Distributed

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _timing import TrainingCPUClock, machine  # noqa: E402
from cnf_time_to_nll import HutchinsonODEfunc  # noqa: E402

DOPRI5 = Adaptive(1e-6, 1e-8)


def test_nll(flow: CNFStack, x: Tensor) -> float:
    """The shared evaluator: mean -log p(x), exact trace, dopri5 1e-6/1e-8."""
    return float(nll_per_sample(flow, x, "dopri5", DOPRI5).mean())


def ffjord_run(args, data, x_test: Tensor) -> Dict[str, Any]:
    from torchdiffeq import odeint_adjoint

    cfg = read_tabular_config(ROOT / "configs" / "digits.toml", mode="opt-disc", seed=args.seed)
    flow = build_tabular_flow(cfg, data.dim)  # the same net and initial weights; torchdiffeq solves
    net, T = flow.blocks[0].net, float(flow.blocks[0].T)
    func = HutchinsonODEfunc(net)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-6)
    x_train = torch.tensor(data.train, dtype=torch.float32)
    batches = EpochBatches(len(x_train), cfg.batch, cfg.seed, Distributed.from_environment("cpu"))
    times = torch.tensor([0.0, T])
    torch.manual_seed(args.seed)
    elapsed = cpu = 0.0
    curve, nfe_f, nfe_b, it = [], 0, 0, 0
    for it in range(10**6):
        x = x_train[batches.indices(it)]
        start, start_cpu = time.perf_counter(), time.process_time()
        opt.zero_grad(set_to_none=True)
        func.e, func.nfe = torch.randn_like(x), 0
        zT, dlogp = odeint_adjoint(func, (x, torch.zeros(x.shape[0])), times, rtol=1e-6, atol=1e-8, method="dopri5")
        nfe_f, func.nfe = nfe_f + func.nfe, 0
        logpz = -0.5 * (data.dim * torch.log(torch.tensor(2 * torch.pi)) + (zT[-1] ** 2).sum(dim=1))
        loss = -(logpz - dlogp[-1]).mean()  # log p(x) = log N(z(T)) - dlogp(T)
        loss.backward()
        opt.step()
        elapsed += time.perf_counter() - start
        cpu += time.process_time() - start_cpu
        nfe_b += func.nfe
        if (it + 1) % args.val_every == 0:
            curve.append((it + 1, elapsed, cpu, test_nll(flow, x_test)))
            print(f"  ffjord it {it + 1}: {elapsed:.1f} s (CPU {cpu:.1f} s), test NLL {curve[-1][3]:.3f}", flush=True)
            if cpu >= args.ffjord_budget:
                break
    n = it + 1
    final = evaluate_stack(flow, x_test, "dopri5", DOPRI5)
    return dict(
        name="ffjord (torchdiffeq, dopri5 adjoint 1e-6/1e-8)",
        iterations=n,
        seconds=elapsed,
        cpu=cpu,
        ms_per_iter=1e3 * elapsed / n,
        nfe_forward=nfe_f / n,
        nfe_backward=nfe_b / n,
        curve=curve,
        final=final,
    )


class _SharedEvaluatorTask(TabularTask):
    """The tabular task validated with `test_nll` on the test rows; adds up training CPU time
    (end of each batch draw to the next iteration, less validations)."""

    def __init__(self, cfg, data, x_test: Tensor, stop_at: float) -> None:
        super().__init__(cfg, data)
        self.x_test, self.stop_at = x_test, stop_at
        self.clock = TrainingCPUClock()

    def before_iteration(self, iteration: int, ctx) -> None:
        self.clock.iteration_starts()

    def batch(self, iteration: int, ctx) -> Tensor:
        x = super().batch(iteration, ctx)
        self.clock.batch_drawn()
        return x

    def validate(self, ctx) -> Dict[str, float]:
        with self.clock.validating(ctx.iteration + 1):
            nll = test_nll(self.flow, self.x_test)
        if nll <= self.stop_at:
            self.config.iterations = ctx.iteration + 2  # reached: one more iteration, then finish
        return dict(val_nll=nll)

    def finish(self, ctx) -> Dict[str, Any]:
        return {}


def odeflow_run(
    args, data, x_test: Tensor, target: float, name: str, overrides: Dict[str, Any], config: str = "digits.toml"
) -> Dict[str, Any]:
    cfg = read_tabular_config(
        ROOT / "configs" / config,
        mode="disc-opt",
        seed=args.seed,
        val_every=args.val_every,
        iterations=10**6,
        time_budget=args.odeflow_budget,
        patience=None,
        checkpoint_every=10**9,
        **overrides,
    )
    trainer = Trainer(_SharedEvaluatorTask(cfg, data, x_test, target), None, quiet=True)
    s = trainer.fit()
    rows = trainer.history
    cpu = trainer.task.clock.at_validation
    curve = [
        (r["iteration"] + 1, r["wall_time"], cpu[r["iteration"] + 1], r["val_nll"]) for r in rows if "val_nll" in r
    ]
    for c in curve:
        print(f"  {name} it {c[0]}: {c[1]:.1f} s (CPU {c[2]:.1f} s), test NLL {c[3]:.3f}", flush=True)
    n = s["iterations"]
    final = evaluate_stack(trainer.task.flow, x_test, "dopri5", DOPRI5)
    return dict(
        name=name,
        iterations=n,
        seconds=s["train_seconds"],
        cpu=trainer.task.clock.cpu,
        ms_per_iter=s["ms_per_iter"],
        nfe_forward=sum(r["nfe_forward"] for r in rows) / n,
        nfe_backward=sum(r["nfe_backward"] for r in rows) / n,
        curve=curve,
        final=final,
        overrides=overrides,
    )


def table(results: List[Dict[str, Any]], target: float) -> str:
    lines = [
        f"| recipe | wall time to test NLL <= {target:.3f} (s) | CPU time to it (s) | iterations to it | ms/iter | "
        "NFE-F / NFE-B per iter | speed-up (wall) | speed-up (CPU) | final test NLL (dopri5 1e-6/1e-8, exact) | "
        "inverse error |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    hits = [next(((i, t, c) for i, t, c, v in r["curve"] if v <= target), None) for r in results]
    base = hits[0] if results and results[0]["name"].startswith("ffjord") else None
    for r, hit in zip(results, hits):
        speed = f"{base[1] / hit[1]:.1f}x | {base[2] / hit[2]:.1f}x" if hit and base else "– | –"
        cells = f"{hit[1]:.1f} | {hit[2]:.1f} | {hit[0]}" if hit else "not reached | – | –"
        lines.append(
            f"| {r['name']} | {cells} | {r['ms_per_iter']:.0f} | {r['nfe_forward']:.1f} / {r['nfe_backward']:.1f} | "
            f"{speed} | {r['final']['nll']:.3f} | {r['final']['inverse_error']:.1e} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-every", type=int, default=20)
    p.add_argument("--ffjord-budget", type=float, default=180.0, help="CPU seconds of FFJORD training")
    p.add_argument("--odeflow-budget", type=float, default=120.0, help="wall seconds of odeflow training at most")
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME:JSON overrides of digits.toml's disc-opt, or NAME:@FILE for configs/FILE",
    )
    p.add_argument(
        "--target",
        type=float,
        default=None,
        help="exploration: skip the FFJORD run and use this target (no speed-up column then)",
    )
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    torch.set_num_threads(1)
    data = load_tabular("digits")
    x_test = torch.tensor(data.test, dtype=torch.float32)
    print(f"{machine()}; load average at start {os.getloadavg()}", flush=True)
    results, target = [], args.target
    if target is None:
        results = [ffjord_run(args, data, x_test)]
        target = min(c[3] for c in results[0]["curve"])
        print(f"target: FFJORD's best test NLL within its budget, {target:.3f}", flush=True)
    variants = [("odeflow disc-opt (digits.toml)", "{}")] if args.target is None else []
    variants += [tuple(v.split(":", 1)) for v in args.variant]
    for name, spec in variants:
        if spec.startswith("@"):
            results.append(odeflow_run(args, data, x_test, target, name, {}, config=spec[1:]))
        else:
            results.append(odeflow_run(args, data, x_test, target, name, json.loads(spec)))
    print(f"load average at end {os.getloadavg()}")
    text = table(results, target)
    print(text)
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                dict(results=results, target=target, machine=machine(), load_end=os.getloadavg()), indent=1, default=str
            )
        )


if __name__ == "__main__":
    main()
