"""Why does odeflow's flow matching trail the peers per iteration? A controlled experiment.

Per seed, every variant trains the SAME net (the benchmark's, `cnf_objectives_data`, the same
initial weights), on the SAME batches, with the SAME noise z and path times drawn from one
generator (odeflow's s and the peers' t = 1 - s), Adam lr 1e-3; only the formulation differs:

  t        odeflow `FlowMatching` (data at s = 0), the net reads s              (odeflow-fm)
  rev      the same with `ReversedTime`: the net reads 1 - s                    (--net-time reversed)
  peer     Meta's flow_matching `AffineProbPath(CondOTScheduler())` at t = 1 - s, noise x_0 = z,
           data x_1 = x, loss ||v(t, x_t) - (x - z)||^2; evaluated as f(s, x) = -v(1 - s, x)
  peer-neg `peer` from the initial weights with the last layer negated: the same trajectory as
           `rev` up to rounding when the two formulations are the same regression (checked on
           the first `--identity-its` losses; max relative difference printed)

Each variant also keeps EMAs of its weights (`odeflow.training.ema.EMA`, decays `--decays`, with
warmup); at each of `--checks` iterations the raw and averaged nets are scored by the benchmark's
one evaluator (exact trace, dopri5 1e-5). Results: JSON lines appended to `--out`
(experiments/fm_gap.jsonl; rows with "partial": true are runs stopped early, read from their
printed lines). `--summarize FILE` prints a results file as a table.

Usage: PYTHONPATH=src python experiments/fm_gap.py --data miniboone-shaped --seeds 0 1 \
           --checks 1000 2000 3000 --test-size 500
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Dict, List

import torch
from torch import Tensor, nn

from odeflow.flows import FlowMatching
from odeflow.nn import ReversedTime
from odeflow.training.ema import EMA

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from cnf_objectives import Backwards  # noqa: E402
from cnf_objectives_data import make_problem  # noqa: E402


def negate_last(net: nn.Module) -> None:
    """v -> -v: every parameter of the net's last layer times -1 (concatsquash/conv: the output
    is linear in its weight, bias and time-shift; the gate is left as is)."""
    last = net.layers[-1]
    with torch.no_grad():
        for name, p in last.named_parameters():
            if "gate" not in name and "hyper_gate" not in name:
                p.neg_()


class Variant:
    def __init__(self, name: str, problem, seed: int, decays: List[float], lr: float = 1e-3) -> None:
        self.name, self.problem = name, problem
        net = problem.fresh_net(seed)
        if name == "peer-neg":
            negate_last(net)
        self.net = net
        self.gen = torch.Generator().manual_seed(seed)
        if name in ("t", "rev"):
            self.field: nn.Module = ReversedTime(net, 1.0) if name == "rev" else net
            self.fm = FlowMatching(problem.flow(self.field, T=1.0), generator=self.gen)
        else:
            from flow_matching.path import AffineProbPath
            from flow_matching.path.scheduler import CondOTScheduler

            self.path = AffineProbPath(scheduler=CondOTScheduler())
            self.field = Backwards(net)
        self.opt = torch.optim.Adam(net.parameters(), lr=lr)
        self.emas = {d: EMA(net, d) for d in decays}

    def loss(self, x: Tensor) -> Tensor:
        if self.name in ("t", "rev"):
            return self.fm.loss(x)[0]
        x1 = self.problem.data_end(x)
        z = torch.randn(x1.shape, dtype=x1.dtype, generator=self.gen)  # FlowMatching's draws, in its order
        s = torch.rand(x1.shape[0], dtype=x1.dtype, generator=self.gen)
        sample = self.path.sample(x_0=z, x_1=x1, t=1 - s)
        return ((self.net(sample.t, sample.x_t) - sample.dx_t) ** 2).mean()

    def step(self, x: Tensor) -> float:
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss(x)
        loss.backward()
        self.opt.step()
        for e in self.emas.values():
            e.update()
        return float(loss.detach())


def summarize(path: Path) -> str:
    """A markdown table of a results file: test NLL (mean over seeds; seeds in brackets) of each
    data set, variant, lr and weights (raw / EMA decay) at each checked iteration."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    lines = []
    for r in rows:
        if "max_rel_loss_diff" in r:
            lines.append(
                f"{r['data']} seed {r['seed']}: rev vs peer-neg, max relative loss difference over "
                f"{r['identity_its']} iterations = {r['max_rel_loss_diff']:.3g}"
            )
    groups: Dict[tuple, Dict[tuple, List[float]]] = {}
    for r in rows:
        if "curve" not in r:
            continue
        for point in r["curve"]:
            for key in [k for k in point if k == "raw" or k.startswith("ema")]:
                g = groups.setdefault((r["data"], r["variant"], r.get("lr", 1e-3), key), {})
                g.setdefault((point["it"],), []).append(point[key][0])
    for (data, variant, lr, key), by_it in sorted(groups.items()):
        cells = ", ".join(f"{it[0]}: {sum(v) / len(v):.3f} (n={len(v)})" for it, v in sorted(by_it.items()))
        lines.append(f"| {data} | {variant} | {lr:g} | {key} | {cells} |")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--summarize":
        print(summarize(Path(sys.argv[2])))
        return
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--checks", type=int, nargs="+", required=True)
    p.add_argument("--variants", nargs="+", default=["t", "rev", "peer"])
    p.add_argument("--decays", type=float, nargs="*", default=[0.99, 0.999])
    p.add_argument("--test-size", type=int, default=1000)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--identity-its", type=int, default=200)
    p.add_argument("--out", type=Path, default=Path("experiments/fm_gap.jsonl"))
    args = p.parse_args()
    torch.set_num_threads(1)
    problem = make_problem(args.data, args.test_size)
    for seed in args.seeds:
        if args.identity_its:  # rev and peer-neg: the same regression?
            a, b = Variant("rev", problem, seed, []), Variant("peer-neg", problem, seed, [])
            worst = 0.0
            for it in range(args.identity_its):
                x = problem.sample(seed, it)
                la, lb = a.step(x), b.step(x)
                worst = max(worst, abs(la - lb) / abs(lb))
            row = dict(data=args.data, seed=seed, identity_its=args.identity_its, max_rel_loss_diff=worst)
            print(json.dumps(row), flush=True)
            with args.out.open("a") as f:
                f.write(json.dumps(row) + "\n")
        for name in args.variants:
            v = Variant(name, problem, seed, args.decays, args.lr)
            curve: List[Dict] = []
            start, losses = time.perf_counter(), []
            for it in range(1, args.checks[-1] + 1):
                losses.append(v.step(problem.sample(seed, it - 1)))
                if it in args.checks:
                    point = dict(it=it, train_loss=sum(losses[-200:]) / len(losses[-200:]))
                    point["raw"] = problem.evaluate(v.field, 1.0)
                    for d, e in v.emas.items():
                        with e.applied():
                            point[f"ema{d}"] = problem.evaluate(v.field, 1.0)
                    curve.append(point)
                    print(args.data, seed, name, args.lr, json.dumps(point), flush=True)
            row = dict(
                data=args.data, seed=seed, variant=name, lr=args.lr, seconds=time.perf_counter() - start, curve=curve
            )
            with args.out.open("a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
