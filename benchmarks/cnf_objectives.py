"""CNF objectives side by side: odeflow flow matching (alone and followed by likelihood
iterations), odeflow's fast likelihood recipe, FFJORD's recipe, torchcfm and flow_matching.

Every entry trains the SAME network (FFJORD's toy net: `ODENet` 64-64-64 concatsquash, tanh,
the same initial weights from one seed), on the same batches (drawn outside the clock), one
torch thread, in one process. The entries of a seed are interleaved round-robin, one second of
training each at a time, so a change of load falls on all alike. The clock counts training only.
At fixed points of each entry's training clock (CHECKPOINTS seconds) the net is evaluated by
ONE evaluator: exact-trace test NLL with dopri5 rtol = atol = 1e-5 (odeflow's solver, the
instantaneous change of variables) on a shared test set, plus the NFE of that solve.
Reported per entry: the first checkpoint time at which test NLL <= each target (an upper bound,
resolution of the checkpoint grid) and the iteration it came at, the NLL at the fixed budget,
ms per iteration and the evaluation NFE (dopri5 1e-5) of the final model; beforehand, the
median cost of one training step of each entry, timed round-robin (`_timing.time_side_by_side`).

Entries (batch 256 unless said; Adam):
  odeflow-fm          `odeflow.flows.FlowMatching`, OT path (sigma_min 0), independent coupling,
                      lr 1e-3, T = 1.
  odeflow-fm-ot       the same with the minibatch-OT coupling (exact assignment: POT, else scipy).
  odeflow-fm+ll       odeflow-fm for 80 % of the budget, then likelihood steps (`CNF.loss`, exact
                      trace, rk4 with 8 steps, lr 1e-4) for the rest.
  odeflow-likelihood  configs/cnf_fast.toml: RNODE (0.01, 0.01), zero init, Hutchinson trace,
                      Disc-Opt rk4, stages 2 steps lr 1e-2 / 2 steps lr 1e-3 / 4 steps lr 5e-4, T 0.5.
  ffjord              FFJORD's recipe on torchdiffeq: odeint_adjoint dopri5 1e-5, Hutchinson
                      trace, lr 1e-3, weight decay 1e-5, batch 512, T 0.5.
  torchcfm            torchcfm 1.0.7 ConditionalFlowMatcher(sigma=0) (its exact-OT matcher too,
                      `torchcfm-ot`), lr 1e-3.
  flow_matching       Meta's flow_matching 1.0.10 AffineProbPath(CondOTScheduler()), lr 1e-3.
The peers' time runs noise -> data; their trained v is evaluated as odeflow's field
f(tau, x) = -v(1 - tau, x) (T = 1), which is the same flow read backwards.

Usage: PYTHONPATH=src python benchmarks/cnf_objectives.py --data 8gaussians --budget 60 --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from odeflow.data.toy2d import sample_toy
from odeflow.flows import CNF, FlowMatching
from odeflow.flows.cnf import standard_normal_logprob
from odeflow.nn import ODENet
from odeflow.solvers.stepping import Adaptive, FixedStep

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _timing import machine  # noqa: E402

DOPRI5 = Adaptive(1e-5, 1e-5)
CHECKPOINTS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 11.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0)
ENTRIES = (
    "odeflow-fm",
    "odeflow-fm-ot",
    "odeflow-fm+ll",
    "odeflow-likelihood",
    "ffjord",
    "torchcfm",
    "torchcfm-ot",
    "flow_matching",
)


def true_nll(data: str, x: Tensor) -> Optional[float]:
    """-log p(x) under the generating density, where it has a closed form."""
    if data == "8gaussians":
        s = 1 / math.sqrt(2)
        c = 4.0 * torch.tensor([(1, 0), (-1, 0), (0, 1), (0, -1), (s, s), (s, -s), (-s, s), (-s, -s)]) / 1.414
        sd = 0.5 / 1.414
        d2 = ((x.double()[:, None, :] - c.double()[None]) ** 2).sum(-1)
        logp = torch.logsumexp(-0.5 * d2 / sd**2, dim=1) - math.log(8) - math.log(2 * math.pi * sd**2)
        return float(-logp.mean())
    if data == "checkerboard":
        return math.log(32.0)  # uniform on 8 squares of side 2
    return None


def fresh_net(seed: int) -> ODENet:
    torch.manual_seed(seed)
    return ODENet(2, [64, 64, 64], layer="concatsquash", activation="tanh")


class Backwards(nn.Module):
    """odeflow's field from a peer's noise->data velocity v: f(tau, x) = -v(1 - tau, x) (T = 1)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        return -self.net(1 - t, x)


def evaluate(net: nn.Module, T: float, x: Tensor) -> Tuple[float, int]:
    flow = CNF(net, 2, T=T, divergence="exact", method="dopri5", step=DOPRI5)
    with torch.no_grad():
        z, logdet = flow.transform(x)
    return float(-(standard_normal_logprob(z) - logdet).mean()), int(flow.last_stats.nfe)


# ---------------------------------------------------------------------------------------------
# one training step per entry: step(iteration) -> None on the batch the harness gives
Step = Callable[[int, Tensor], None]


def adam_step(params, lr: float, loss_fn: Callable[[Tensor], Tensor], weight_decay: float = 0.0) -> Step:
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)

    def step(it: int, x: Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(x).backward()
        opt.step()

    step.opt = opt  # type: ignore[attr-defined]
    return step


def odeflow_fm(net: ODENet, seed: int, coupling: str = "independent") -> Step:
    flow = CNF(net, 2, T=1.0)
    fm = FlowMatching(flow, path="ot", coupling=coupling, generator=torch.Generator().manual_seed(seed))
    return adam_step(net.parameters(), 1e-3, lambda x: fm.loss(x)[0])


def odeflow_fm_then_likelihood(net: ODENet, seed: int, switch_at: float, clock: Callable[[], float]) -> Step:
    fm_step = odeflow_fm(net, seed)
    flow = CNF(net, 2, T=1.0, divergence="exact", method="rk4", step=FixedStep(steps=8))
    opt = fm_step.opt  # type: ignore[attr-defined]

    def step(it: int, x: Tensor) -> None:
        if clock() < switch_at:
            fm_step(it, x)
            return
        for group in opt.param_groups:
            group["lr"] = 1e-4
        opt.zero_grad(set_to_none=True)
        flow.loss(x)[0].backward()
        opt.step()

    return step


FAST_STAGES = ((50, 2, 1e-2), (150, 2, 1e-3), (10**9, 4, 5e-4))  # configs/cnf_fast.toml


def odeflow_likelihood(net: ODENet, seed: int) -> Step:
    from odeflow.nn.layers import zero_last

    zero_last(net.layers[-1])
    flow = CNF(
        net, 2, T=0.5, divergence="hutchinson", method="rk4", step=FixedStep(steps=2), kinetic=0.01, jacobian=0.01
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)

    def step(it: int, x: Tensor) -> None:
        until, steps, lr = next(s for s in FAST_STAGES if it < s[0])
        flow.set_solver("rk4", FixedStep(steps=steps))
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad(set_to_none=True)
        flow.loss(x)[0].backward()
        opt.step()

    return step


def ffjord(net: ODENet, seed: int) -> Step:
    from cnf_time_to_nll import HutchinsonODEfunc
    from torchdiffeq import odeint_adjoint

    func = HutchinsonODEfunc(net)
    times = torch.tensor([0.0, 0.5])

    def loss(x: Tensor) -> Tensor:
        func.e = torch.randn_like(x)
        zT, dlogp = odeint_adjoint(func, (x, torch.zeros(x.shape[0])), times, rtol=1e-5, atol=1e-5, method="dopri5")
        return -(standard_normal_logprob(zT[-1]) - dlogp[-1]).mean()

    return adam_step(net.parameters(), 1e-3, loss, weight_decay=1e-5)


def torchcfm_step(net: ODENet, seed: int, exact_ot: bool) -> Step:
    from torchcfm.conditional_flow_matching import ConditionalFlowMatcher, ExactOptimalTransportConditionalFlowMatcher

    matcher = ExactOptimalTransportConditionalFlowMatcher(sigma=0.0) if exact_ot else ConditionalFlowMatcher(sigma=0.0)

    def loss(x1: Tensor) -> Tensor:
        x0 = torch.randn_like(x1)
        t, xt, ut = matcher.sample_location_and_conditional_flow(x0, x1)
        return ((net(t, xt) - ut) ** 2).mean()

    return adam_step(net.parameters(), 1e-3, loss)


def flow_matching_step(net: ODENet, seed: int) -> Step:
    from flow_matching.path import AffineProbPath
    from flow_matching.path.scheduler import CondOTScheduler

    path = AffineProbPath(scheduler=CondOTScheduler())

    def loss(x1: Tensor) -> Tensor:
        x0 = torch.randn_like(x1)
        t = torch.rand(x1.shape[0])
        sample = path.sample(x_0=x0, x_1=x1, t=t)
        return ((net(sample.t, sample.x_t) - sample.dx_t) ** 2).mean()

    return adam_step(net.parameters(), 1e-3, loss)


# ---------------------------------------------------------------------------------------------
class Entry:
    """One entry's net, step and training clock; `advance(until)` trains until its clock passes
    `until` seconds, evaluating at every checkpoint it crosses."""

    def __init__(self, name: str, args, seed: int, x_test: Tensor) -> None:
        net = fresh_net(seed)
        self.elapsed = 0.0
        clock = lambda: self.elapsed  # noqa: E731
        self.T, self.eval_net, self.batch = 1.0, net, 256
        if name == "odeflow-fm":
            self.step = odeflow_fm(net, seed)
        elif name == "odeflow-fm-ot":
            self.step = odeflow_fm(net, seed, "minibatch-ot")
        elif name == "odeflow-fm+ll":
            self.step = odeflow_fm_then_likelihood(net, seed, 0.8 * args.budget, clock)
        elif name == "odeflow-likelihood":
            self.step, self.T = odeflow_likelihood(net, seed), 0.5
        elif name == "ffjord":
            self.step, self.T, self.batch = ffjord(net, seed), 0.5, 512
        elif name in ("torchcfm", "torchcfm-ot"):
            self.step, self.eval_net = torchcfm_step(net, seed, name == "torchcfm-ot"), Backwards(net)
        elif name == "flow_matching":
            self.step, self.eval_net = flow_matching_step(net, seed), Backwards(net)
        else:
            raise ValueError(f"unknown entry {name!r}; valid: {', '.join(ENTRIES)}")
        self.name, self.seed, self.args, self.x_test = name, seed, args, x_test
        self.marks = [c for c in CHECKPOINTS if c <= args.budget]
        self.curve: List[Tuple[float, int, float, int]] = []
        self.it = 0
        self.rng_state = torch.random.manual_seed(seed).get_state()

    def advance(self, until: float) -> None:
        torch.random.set_rng_state(self.rng_state)  # each entry keeps its own random stream
        while self.marks and self.elapsed < until:
            x = sample_toy(self.args.data, self.batch, seed=1_000_000 * self.seed + self.it)
            start = time.perf_counter()
            self.step(self.it, x)
            self.elapsed += time.perf_counter() - start
            self.it += 1
            if self.elapsed >= self.marks[0]:
                while self.marks and self.elapsed >= self.marks[0]:
                    self.marks.pop(0)
                nll, nfe = evaluate(self.eval_net, self.T, self.x_test)
                self.curve.append((self.elapsed, self.it, nll, nfe))
                print(f"  {self.name} seed {self.seed}: {self.elapsed:.2f} s, it {self.it}, NLL {nll:.3f}, NFE {nfe}")
        self.rng_state = torch.random.get_rng_state()

    def result(self) -> Dict[str, Any]:
        return dict(
            name=self.name,
            seed=self.seed,
            iterations=self.it,
            seconds=self.elapsed,
            ms_per_iter=1e3 * self.elapsed / max(1, self.it),
            curve=self.curve,
        )


def run_interleaved(names: List[str], args, seed: int, x_test: Tensor, slice_s: float = 1.0) -> List[Dict[str, Any]]:
    """All entries of one seed, round-robin in slices of `slice_s` training seconds, so that a
    change of load on the machine falls on every entry alike."""
    entries = [Entry(name, args, seed, x_test) for name in names]
    until = 0.0
    while any(e.marks for e in entries):
        until += slice_s
        for e in entries:
            e.advance(until)
    return [e.result() for e in entries]


def step_costs(names: List[str], args) -> Dict[str, float]:
    """Median ms per training step of each entry, timed round-robin (benchmarks/_timing.py)."""
    from _timing import time_side_by_side

    fns = {}
    for name in names:
        e = Entry(name, args, 0, torch.zeros(1, 2))
        x = sample_toy(args.data, e.batch, seed=5)
        fns[name] = (lambda e=e, x=x: e.step(10_000, x)) if name != "odeflow-fm+ll" else None
    fns = {k: v for k, v in fns.items() if v is not None}
    return {k: 1e3 * v for k, v in time_side_by_side(fns, repeats=5, min_time=0.3).items()}


def first_time(curve, target: float) -> Optional[Tuple[float, int]]:
    return next(((t, it) for t, it, v, _ in curve if v <= target), None)


def summarize(results: List[Dict[str, Any]], targets: List[float], ref: Optional[float]) -> str:
    head = " | ".join(f"time to ≤ {t:.2f} (s)" for t in targets)
    lines = [
        f"| entry | seeds | {head} | NLL at budget | eval NFE (dopri5 1e-5) | ms/iter |",
        "|---" * (5 + len(targets)) + "|",
    ]
    for name in dict.fromkeys(r["name"] for r in results):
        rs = [r for r in results if r["name"] == name]
        cells = []
        for tgt in targets:
            hits = [first_time(r["curve"], tgt) for r in rs]
            cells.append(", ".join("never" if h is None else f"{h[0]:.1f} (it {h[1]})" for h in hits))
        finals = [r["curve"][-1][2] for r in rs]
        nfes = [r["curve"][-1][3] for r in rs]
        spread = f" ± {np.std(finals):.3f}" if len(finals) > 1 else ""
        lines.append(
            f"| {name} | {len(rs)} | {' | '.join(cells)} | {np.mean(finals):.3f}{spread} "
            f"({', '.join(f'{v:.3f}' for v in finals)}) | {', '.join(map(str, nfes))} | "
            f"{np.mean([r['ms_per_iter'] for r in rs]):.1f} |"
        )
    if ref is not None:
        lines.append(f"\nTrue density on the test set: {ref:.3f}.")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="8gaussians", choices=["8gaussians", "checkerboard"])
    p.add_argument("--budget", type=float, default=60.0, help="training seconds per entry")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--entries", nargs="+", default=list(ENTRIES), choices=list(ENTRIES))
    p.add_argument("--targets", type=float, nargs="+", default=None)
    p.add_argument("--test-size", type=int, default=5000)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    torch.set_num_threads(1)
    x_test = sample_toy(args.data, args.test_size, seed=777)
    ref = true_nll(args.data, x_test)
    targets = args.targets or ([3.15, 3.00, 2.85] if args.data == "8gaussians" else [3.90, 3.70, 3.55])
    print(f"{machine()}; load average at start {os.getloadavg()}; true NLL {ref}", flush=True)
    costs = step_costs(args.entries, args)
    print(
        "ms per training step (median of 5 interleaved repeats): " + ", ".join(f"{k} {v:.2f}" for k, v in costs.items())
    )
    results = []
    for seed in args.seeds:
        results += run_interleaved(args.entries, args, seed, x_test)
    print(f"load average at end {os.getloadavg()}")
    text = summarize(results, targets, ref)
    print(text)
    if args.json is not None:
        args.json.write_text(
            json.dumps(dict(results=results, step_ms=costs, targets=targets, true_nll=ref, machine=machine()), indent=1)
        )


if __name__ == "__main__":
    main()
