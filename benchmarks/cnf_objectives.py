"""CNF objectives side by side: odeflow flow matching (alone and followed by likelihood
iterations), odeflow's fast likelihood recipe, FFJORD's recipe, torchcfm and flow_matching.

Every entry trains the SAME network (the data set's net, `cnf_objectives_data`: FFJORD's toy net
on 8gaussians/checkerboard, the tabular recipe's ODENet on digits and the MINIBOONE-shaped rows,
the single-scale image CNF's ConvODENet on image digits; the same initial weights from one seed),
on the same batches (drawn outside the clock), one
torch thread, in one process (`--clock cpu`: training clocks in process CPU time instead of wall
time, for a loaded machine). The entries of a seed are interleaved round-robin, one second of
training each at a time, so a change of load falls on all alike. The clock counts training only.
At fixed points of each entry's training clock (CHECKPOINTS seconds: on the toy data every 0.25 s
up to 5 s, to separate early ties, then coarser) the net is evaluated by
ONE evaluator: exact-trace test NLL (image digits: bits/dim) with dopri5 rtol = atol = 1e-5
(odeflow's solver, the instantaneous change of variables) on a shared test set, plus the NFE of
that solve. Tabular and image data are evaluated on the coarser grid COARSE_CHECKPOINTS (an
exact-trace evaluation in 43-64 dimensions costs seconds), and without --targets their targets
are set after the run from the entries' own values (`auto_targets`).
Reported per entry: the first checkpoint time at which test NLL <= each target (an upper bound,
resolution of the checkpoint grid) and the iteration it came at, the NLL at the fixed budget,
ms per iteration and the evaluation NFE (dopri5 1e-5) of the final model; beforehand, the
median cost of one training step of each entry, timed round-robin (`_timing.time_side_by_side`).

Entries (toy data: batch 256 unless said; tabular/image: the data set's batch for every entry;
Adam). Beyond the toy data the default entries are odeflow-fm, odeflow-likelihood (the data set's
shipped recipe, `odeflow_recipe_likelihood`), torchcfm and flow_matching; the peers regress on
what odeflow's flow starts from (images: the logit of the dequantized pixels, flattened).
  odeflow-fm-default  what `odeflow train ... --objective flow-matching` does without other
                      options: `FlowMatching`, OT path, independent coupling, T = 1, the net time
                      and lr of `FM_DEFAULTS`, the EMA 0.99 with the tasks' warmup offset
                      (`FM_EMA_WARMUP`) evaluated, the Trainer's optimizer (`make_optimizer`: fused
                      Adam on the CPU; every odeflow entry uses it, the peers and FFJORD
                      torch.optim.Adam as documented).
  odeflow-fm-default-w10  the same with the EMA's former warmup offset 10 (TensorFlow's).
  odeflow-fm-default-lr5, -lr3  the same with lr 5e-3 / 3e-3 (in the runs of 2026-12-08,
                      benchmarks/results/*_cpu_s8_*, the default lr was 3e-3: there
                      odeflow-fm-default and -w10 ran at 3e-3, -lr5 at the default since).
  odeflow-fm-t-default  the same with the net reading t (`--net-time t`).
  odeflow-fm-ot-default   the same with the minibatch-OT coupling (exact assignment: POT, else scipy).
  odeflow-fm+ll-default   the same for 80 % of the budget, then likelihood steps (as odeflow-fm+ll).
  odeflow-fm          `odeflow.flows.FlowMatching`, OT path (sigma_min 0), independent coupling,
                      lr 1e-3, T = 1 (the settings before the defaults above).
  odeflow-fm-ot       the same with the minibatch-OT coupling (exact assignment: POT, else scipy).
  odeflow-fm-rev      odeflow-fm with the net reading T - t (`ReversedTime`, `--net-time reversed`).
  odeflow-fm-ema      odeflow-fm evaluated with the EMA of its weights (`odeflow.training.ema.EMA`,
                      the flow tasks' flow-matching default decay `FM_EMA_DECAY`, warmup), updated
                      after every step (inside the timed step).
  odeflow-fm-rev-ema  odeflow-fm-rev with that EMA.
  odeflow-fm-ema-lr3  odeflow-fm-ema with lr 3e-3 (the EMA smooths the noisier iterates).
  odeflow-fm-rev-ema-lr3  odeflow-fm-rev-ema with lr 3e-3: `--net-time reversed --ema 0.99 --lr 3e-3`.
  odeflow-fm+ll       odeflow-fm for 80 % of the budget, then likelihood steps (`CNF.loss`, exact
                      trace, rk4 with 8 steps, lr 1e-4) for the rest.
  odeflow-likelihood  configs/cnf_fast.toml: RNODE (0.01, 0.01), zero init, Hutchinson trace,
                      Disc-Opt rk4, stages 2 steps lr 1e-2 / 2 steps lr 1e-3 / 4 steps lr 5e-4, T 0.5.
  ffjord              FFJORD's recipe on torchdiffeq: odeint_adjoint dopri5 1e-5, Hutchinson
                      trace, lr 1e-3, weight decay 1e-5, batch 512, T 0.5.
  torchcfm            torchcfm 1.0.7 ConditionalFlowMatcher(sigma=0) (its exact-OT matcher too,
                      `torchcfm-ot`), lr 1e-3.
  flow_matching       Meta's flow_matching 1.0.10 AffineProbPath(CondOTScheduler()), lr 1e-3.
  torchcfm-lr3, flow_matching-lr3   the peers with lr 3e-3 (the rate of odeflow-fm-*-lr3, no EMA).
  flow_matching-lr5   flow_matching with lr 5e-3 (the rate of odeflow-fm-default-lr5, no EMA).
The peers' time runs noise -> data; their trained v is evaluated as odeflow's field
f(tau, x) = -v(1 - tau, x) (T = 1), which is the same flow read backwards.

Several seeds can run as separate single-threaded processes (`--seeds 0 --json s0.json`, ...) on the
CPU clock and be summarized together with `--merge s0.json s1.json ...` (per target: mean ± half
the range of the seeds' first-hit times; per entry: the final value's mean ± half-range). The
JSON records the clock.

Usage: PYTHONPATH=src python benchmarks/cnf_objectives.py --data 8gaussians --budget 60 --seeds 0 1
       PYTHONPATH=src python benchmarks/cnf_objectives.py --data image-digits --budget 60 --seeds 0
"""

from __future__ import annotations

import argparse
import contextlib
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

from odeflow.flows import CNF, FlowMatching
from odeflow.flows.cnf import standard_normal_logprob
from odeflow.solvers.stepping import FixedStep
from odeflow.tasks.objective_config import FM_EMA_DECAY, FM_EMA_WARMUP
from odeflow.training.ema import EMA

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _timing import machine  # noqa: E402
from cnf_objectives_data import DATA, TOY, Problem, describe, make_problem  # noqa: E402

CLOCK: List[Callable[[], float]] = [time.perf_counter]  # --clock cpu: time.process_time
# toy data: every 0.25 s up to 5 s (to separate early ties), then coarser
CHECKPOINTS = (*(0.25 * k for k in range(1, 21)), 6.0, 8.0, 11.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0)
COARSE_CHECKPOINTS = (2.0, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0)  # tabular and image data
DEFAULT_RECIPES = (
    "odeflow-fm-default",
    "odeflow-fm-default-w10",
    "odeflow-fm-default-lr5",
    "odeflow-fm-default-lr3",
    "odeflow-fm-t-default",
    "odeflow-fm-ot-default",
    "odeflow-fm+ll-default",
)
ENTRIES = (
    "odeflow-fm-default",
    "odeflow-fm-default-w10",
    "odeflow-fm-default-lr5",
    "odeflow-fm-default-lr3",
    "odeflow-fm-t-default",
    "odeflow-fm-ot-default",
    "odeflow-fm+ll-default",
    "odeflow-fm",
    "odeflow-fm-ot",
    "odeflow-fm-rev",
    "odeflow-fm-ema",
    "odeflow-fm-rev-ema",
    "odeflow-fm-ema-lr3",
    "odeflow-fm-rev-ema-lr3",
    "odeflow-fm+ll",
    "odeflow-likelihood",
    "ffjord",
    "torchcfm",
    "torchcfm-ot",
    "flow_matching",
    "torchcfm-lr3",
    "flow_matching-lr3",
    "flow_matching-lr5",
)
DEFAULT_ENTRIES = (  # beyond the toy data
    "odeflow-fm-default",
    "odeflow-fm-ema-lr3",
    "odeflow-likelihood",
    "torchcfm",
    "flow_matching",
    "torchcfm-lr3",
    "flow_matching-lr3",
    "flow_matching-lr5",
)


class Backwards(nn.Module):
    """odeflow's field from a peer's noise->data velocity v: f(tau, x) = -v(1 - tau, x) (T = 1)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        return -self.net(1 - t, x)


# ---------------------------------------------------------------------------------------------
# one training step per entry: step(iteration) -> None on the batch the harness gives
Step = Callable[[int, Tensor], None]


def adam_step(
    params, lr: float, loss_fn: Callable[[Tensor], Tensor], weight_decay: float = 0.0, odeflow: bool = False
) -> Step:
    """Adam on the loss; ``odeflow``: the optimizer odeflow's Trainer builds (`make_optimizer`:
    fused Adam on the CPU), else torch.optim.Adam as the peers' examples (and FFJORD) build it."""
    if odeflow:
        from odeflow.tasks.cnf2d_config import CNFConfig
        from odeflow.training.optim import make_optimizer

        opt = make_optimizer(CNFConfig(lr=lr, weight_decay=weight_decay), params)
    else:
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)

    def step(it: int, x: Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(x).backward()
        opt.step()

    step.opt = opt  # type: ignore[attr-defined]
    return step


def odeflow_fm(problem: Problem, net: nn.Module, seed: int, coupling: str = "independent", lr: float = 1e-3) -> Step:
    flow = problem.flow(net, T=1.0)
    fm = FlowMatching(flow, path="ot", coupling=coupling, generator=torch.Generator().manual_seed(seed))
    return adam_step(net.parameters(), lr, lambda x: fm.loss(x)[0], odeflow=True)


def with_ema(step: Step, net: nn.Module, warmup_offset: float = FM_EMA_WARMUP) -> Tuple[Step, EMA]:
    """The step followed by the EMA update (the flow tasks' flow-matching default decay and
    warmup offset w, beta_n = min(decay, (1 + n) / (w + n)))."""
    ema = EMA(net, FM_EMA_DECAY, warmup_offset=warmup_offset)

    def ema_step(it: int, x: Tensor) -> None:
        step(it, x)
        ema.update()

    return ema_step, ema


def odeflow_fm_then_likelihood(
    problem: Problem, net: nn.Module, seed: int, switch_at: float, clock: Callable[[], float], lr: float = 1e-3
) -> Step:
    fm_step = odeflow_fm(problem, net, seed, lr=lr)
    flow = problem.flow(net, T=1.0, divergence="exact", method="rk4", step=FixedStep(steps=8))
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


def odeflow_likelihood(problem: Problem, net: nn.Module, seed: int) -> Step:
    """The toy data: configs/cnf_fast.toml; the others: `odeflow_recipe_likelihood`."""
    if problem.name not in TOY:
        return odeflow_recipe_likelihood(problem, net)
    from odeflow.nn.layers import zero_last

    zero_last(net.layers[-1])
    flow = CNF(
        net, 2, T=0.5, divergence="hutchinson", method="rk4", step=FixedStep(steps=2), kinetic=0.01, jacobian=0.01
    )
    from odeflow.tasks.cnf2d_config import CNFConfig
    from odeflow.training.optim import make_optimizer

    opt = make_optimizer(CNFConfig(lr=1e-2), net.parameters())  # the Trainer's (fused Adam)

    def step(it: int, x: Tensor) -> None:
        until, steps, lr = next(s for s in FAST_STAGES if it < s[0])
        flow.set_solver("rk4", FixedStep(steps=steps))
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad(set_to_none=True)
        flow.loss(x)[0].backward()
        opt.step()

    return step


def odeflow_recipe_likelihood(problem: Problem, net: nn.Module) -> Step:
    """The shipped recipe of the data set with the shared net: tabular (configs/digits.toml,
    configs/miniboone.toml): Hutchinson trace, rk4 h = 0.25, T = 1, lr 1e-3; image-digits
    (configs/image_digits.toml): Hutchinson, rk4 h = 0.5, T = 1, lr 3e-3 held constant (the
    recipe's cosine decay is tied to its 400 iterations, which a time budget does not fix)."""
    h, lr = (0.5, 3e-3) if problem.name == "image-digits" else (0.25, 1e-3)
    flow = problem.flow(net, T=1.0, divergence="hutchinson", method="rk4", step=FixedStep(h))
    return adam_step(net.parameters(), lr, lambda x: flow.loss(x)[0], odeflow=True)


def ffjord(net: nn.Module, seed: int) -> Step:
    from cnf_time_to_nll import HutchinsonODEfunc
    from torchdiffeq import odeint_adjoint

    func = HutchinsonODEfunc(net)
    times = torch.tensor([0.0, 0.5])

    def loss(x: Tensor) -> Tensor:
        func.e = torch.randn_like(x)
        zT, dlogp = odeint_adjoint(func, (x, torch.zeros(x.shape[0])), times, rtol=1e-5, atol=1e-5, method="dopri5")
        return -(standard_normal_logprob(zT[-1]) - dlogp[-1]).mean()

    return adam_step(net.parameters(), 1e-3, loss, weight_decay=1e-5)


def torchcfm_step(problem: Problem, net: nn.Module, seed: int, exact_ot: bool, lr: float = 1e-3) -> Step:
    from torchcfm.conditional_flow_matching import ConditionalFlowMatcher, ExactOptimalTransportConditionalFlowMatcher

    matcher = ExactOptimalTransportConditionalFlowMatcher(sigma=0.0) if exact_ot else ConditionalFlowMatcher(sigma=0.0)

    def loss(x: Tensor) -> Tensor:
        x1 = problem.data_end(x)
        x0 = torch.randn_like(x1)
        t, xt, ut = matcher.sample_location_and_conditional_flow(x0, x1)
        return ((net(t, xt) - ut) ** 2).mean()

    return adam_step(net.parameters(), lr, loss)


def flow_matching_step(problem: Problem, net: nn.Module, seed: int, lr: float = 1e-3) -> Step:
    from flow_matching.path import AffineProbPath
    from flow_matching.path.scheduler import CondOTScheduler

    path = AffineProbPath(scheduler=CondOTScheduler())

    def loss(x: Tensor) -> Tensor:
        x1 = problem.data_end(x)
        x0 = torch.randn_like(x1)
        t = torch.rand(x1.shape[0])
        sample = path.sample(x_0=x0, x_1=x1, t=t)
        return ((net(sample.t, sample.x_t) - sample.dx_t) ** 2).mean()

    return adam_step(net.parameters(), lr, loss)


# ---------------------------------------------------------------------------------------------
class Entry:
    """One entry's net, step and training clock; `advance(until)` trains until its clock passes
    `until` seconds, evaluating at every checkpoint it crosses."""

    def __init__(self, name: str, args, seed: int, problem: Problem) -> None:
        net = problem.fresh_net(seed)
        self.elapsed = 0.0
        clock = lambda: self.elapsed  # noqa: E731
        self.T, self.eval_net = 1.0, net
        self.ema: Optional[EMA] = None
        if name in DEFAULT_RECIPES:
            from odeflow.nn import ReversedTime  # the command line's defaults: FM_DEFAULTS' net
            from odeflow.tasks.objective_config import FM_DEFAULTS  # time and lr, the EMA 0.99

            lr = {"-lr5": 5e-3, "-lr3": 3e-3}.get(name[-4:], FM_DEFAULTS["lr"])
            if FM_DEFAULTS["net_time"] == "reversed" and name != "odeflow-fm-t-default":
                self.eval_net = ReversedTime(net, 1.0)
            if name == "odeflow-fm+ll-default":
                step = odeflow_fm_then_likelihood(problem, self.eval_net, seed, 0.8 * args.budget, clock, lr=lr)
            else:
                coupling = "minibatch-ot" if name == "odeflow-fm-ot-default" else "independent"
                step = odeflow_fm(problem, self.eval_net, seed, coupling=coupling, lr=lr)
            # -w10: the EMA's former warmup offset (TensorFlow's), to measure the change
            self.step, self.ema = with_ema(step, net, 10.0 if name.endswith("-w10") else FM_EMA_WARMUP)
        elif name in ("odeflow-fm-ema", "odeflow-fm-rev-ema", "odeflow-fm-ema-lr3", "odeflow-fm-rev-ema-lr3"):
            if "rev" in name:
                from odeflow.nn import ReversedTime

                self.eval_net = ReversedTime(net, 1.0)
            lr = 3e-3 if name.endswith("-lr3") else 1e-3
            self.step, self.ema = with_ema(odeflow_fm(problem, self.eval_net, seed, lr=lr), net)
        elif name == "odeflow-fm":
            self.step = odeflow_fm(problem, net, seed)
        elif name == "odeflow-fm-ot":
            self.step = odeflow_fm(problem, net, seed, "minibatch-ot")
        elif name == "odeflow-fm-rev":  # the net reads T - t (`--net-time reversed`), as the peers' nets do
            from odeflow.nn import ReversedTime

            self.eval_net = ReversedTime(net, 1.0)
            self.step = odeflow_fm(problem, self.eval_net, seed)
        elif name == "odeflow-fm+ll":
            self.step = odeflow_fm_then_likelihood(problem, net, seed, 0.8 * args.budget, clock)
        elif name == "odeflow-likelihood":
            self.step = odeflow_likelihood(problem, net, seed)
            self.T = 0.5 if problem.name in TOY else 1.0
        elif name == "ffjord":
            if problem.name not in TOY:
                raise ValueError("the ffjord entry runs on the toy data only; drop it from --entries")
            self.step, self.T = ffjord(net, seed), 0.5
        elif name in ("torchcfm", "torchcfm-ot"):
            self.step, self.eval_net = torchcfm_step(problem, net, seed, name == "torchcfm-ot"), Backwards(net)
        elif name in ("torchcfm-lr3", "flow_matching-lr3", "flow_matching-lr5"):  # the peers at odeflow's rates, no EMA
            make = torchcfm_step if name == "torchcfm-lr3" else flow_matching_step
            kw = dict(exact_ot=False) if name == "torchcfm-lr3" else {}
            lr = 5e-3 if name.endswith("-lr5") else 3e-3
            self.step, self.eval_net = make(problem, net, seed, lr=lr, **kw), Backwards(net)
        elif name == "flow_matching":
            self.step, self.eval_net = flow_matching_step(problem, net, seed), Backwards(net)
        else:
            raise ValueError(f"unknown entry {name!r}; valid: {', '.join(ENTRIES)}")
        # FFJORD's recipe draws batches of 512 on the toy data; every other entry the data set's batch
        self.batch = 512 if name == "ffjord" else problem.batch
        self.name, self.seed, self.args, self.problem = name, seed, args, problem
        grid = args.checkpoints or (CHECKPOINTS if problem.name in TOY else COARSE_CHECKPOINTS)
        self.marks = [c for c in grid if c <= args.budget]
        self.curve: List[Tuple[float, int, float, int]] = []
        self.it = 0
        self.rng_state = torch.random.manual_seed(seed).get_state()

    def next_batch(self) -> Tensor:
        return self.problem.sample(self.seed, self.it, self.batch)

    def advance(self, until: float) -> None:
        torch.random.set_rng_state(self.rng_state)  # each entry keeps its own random stream
        while self.marks and self.elapsed < until:
            x = self.next_batch()
            start = CLOCK[0]()
            self.step(self.it, x)
            self.elapsed += CLOCK[0]() - start
            self.it += 1
            if self.elapsed >= self.marks[0]:
                while self.marks and self.elapsed >= self.marks[0]:
                    self.marks.pop(0)
                with self.ema.applied() if self.ema is not None else contextlib.nullcontext():
                    value, nfe = self.problem.evaluate(self.eval_net, self.T)
                self.curve.append((self.elapsed, self.it, value, nfe))
                print(
                    f"  {self.name} seed {self.seed}: {self.elapsed:.2f} s, it {self.it}, "
                    f"{self.problem.unit} {value:.3f}, NFE {nfe}",
                    flush=True,
                )
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


def run_interleaved(names: List[str], args, seed: int, problem: Problem, slice_s: float = 1.0) -> List[Dict[str, Any]]:
    """All entries of one seed, round-robin in slices of `slice_s` training seconds, so that a
    change of load on the machine falls on every entry alike."""
    entries = [Entry(name, args, seed, problem) for name in names]
    until = 0.0
    while any(e.marks for e in entries):
        until += slice_s
        for e in entries:
            e.advance(until)
    return [e.result() for e in entries]


def step_costs(names: List[str], args, problem: Problem) -> Dict[str, float]:
    """Median ms per training step of each entry, timed round-robin (benchmarks/_timing.py)."""
    from _timing import time_side_by_side

    fns = {}
    for name in names:
        e = Entry(name, args, 0, problem)
        x = e.next_batch()
        fns[name] = (lambda e=e, x=x: e.step(10_000, x)) if not name.startswith("odeflow-fm+ll") else None
    fns = {k: v for k, v in fns.items() if v is not None}
    return {k: 1e3 * v for k, v in time_side_by_side(fns, repeats=5, min_time=0.3).items()}


def first_time(curve, target: float) -> Optional[Tuple[float, int]]:
    return next(((t, it) for t, it, v, _ in curve if v <= target), None)


def mean_spread(values: List[float], digits: int = 2) -> str:
    """'mean ± half-range' of per-seed values (the spread is half of max - min)."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {(max(values) - min(values)) / 2:.{digits}f}"


def auto_targets(results: List[Dict[str, Any]]) -> List[float]:
    """Where no targets are given: the worst, the middle and the second-best entry's value at the
    budget (means over seeds), rounded up to 0.01: how soon each entry gets where the slowest
    ends, where the middle one ends and where the runner-up ends. Set after the run from its own
    curves (say so beside the table)."""
    names = list(dict.fromkeys(r["name"] for r in results))
    finals = sorted(float(np.mean([r["curve"][-1][2] for r in results if r["name"] == n])) for n in names)
    picks = sorted({finals[-1], finals[len(finals) // 2], finals[min(1, len(finals) - 1)]}, reverse=True)
    return [math.ceil(v * 100) / 100 for v in picks]


def summarize(results: List[Dict[str, Any]], targets: List[float], ref: Optional[float], unit: str = "NLL") -> str:
    head = " | ".join(f"time to ≤ {t:.2f} (s)" for t in targets)
    lines = [
        f"| entry | seeds | {head} | {unit} at budget | eval NFE (dopri5 1e-5) | ms/iter |",
        "|---" * (5 + len(targets)) + "|",
    ]
    for name in dict.fromkeys(r["name"] for r in results):
        rs = [r for r in results if r["name"] == name]
        cells = []
        for tgt in targets:
            hits = [first_time(r["curve"], tgt) for r in rs]
            if len(rs) > 1 and all(h is not None for h in hits):  # mean ± half-range over the seeds
                times = [h[0] for h in hits if h is not None]
                its = np.mean([h[1] for h in hits if h is not None])
                cells.append(f"{mean_spread(times)} ({', '.join(f'{t:.2f}' for t in times)}; it {its:.0f})")
            else:
                cells.append(", ".join("never" if h is None else f"{h[0]:.2f} (it {h[1]})" for h in hits))
        finals = [r["curve"][-1][2] for r in rs]
        nfes = [r["curve"][-1][3] for r in rs]
        spread = f" ± {(max(finals) - min(finals)) / 2:.3f}" if len(finals) > 1 else ""
        lines.append(
            f"| {name} | {len(rs)} | {' | '.join(cells)} | {np.mean(finals):.3f}{spread} "
            f"({', '.join(f'{v:.3f}' for v in finals)}) | {', '.join(map(str, nfes))} | "
            f"{np.mean([r['ms_per_iter'] for r in rs]):.1f} |"
        )
    if ref is not None:
        lines.append(f"\nTrue density on the test set: {ref:.3f}.")
    return "\n".join(lines)


def values_at_checkpoints(results: List[Dict[str, Any]], unit: str = "NLL") -> str:
    """Per entry, the value at each checkpoint as mean ± half-range over the seeds (the first
    evaluation at or past each grid point; `--merge ... --values`)."""
    grid = sorted({round(t) if abs(t - round(t)) < 0.05 else round(t, 2) for r in results for t, *_ in r["curve"]})
    lines = [f"| entry | seeds | {' | '.join(f'{unit} at {g:g} s' for g in grid)} | CPU ms/iter |"]
    lines.append("|---" * (3 + len(grid)) + "|")
    for name in dict.fromkeys(r["name"] for r in results):
        rs = [r for r in results if r["name"] == name]
        cells = []
        for g in grid:
            vals = [next((v for t, _, v, _ in r["curve"] if t >= g - 0.05), None) for r in rs]
            got = [v for v in vals if v is not None]
            cells.append(mean_spread(got, 3 if unit == "bits/dim" else 2) if len(got) == len(vals) else "—")
        ms = np.mean([r["ms_per_iter"] for r in rs])
        lines.append(f"| {name} | {len(rs)} | {' | '.join(cells)} | {ms:.1f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="8gaussians", choices=list(DATA))
    p.add_argument("--budget", type=float, default=60.0, help="training seconds per entry")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--entries", nargs="+", default=None, choices=list(ENTRIES))
    p.add_argument("--targets", type=float, nargs="+", default=None)
    p.add_argument("--checkpoints", type=float, nargs="+", default=None, help="training seconds at which to evaluate")
    p.add_argument("--test-size", type=int, default=5000, help="toy: test points; others: the first N test rows")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        default=None,
        help="train nothing: summarize the results of these --json files together (e.g. one process per seed)",
    )
    p.add_argument("--values", action="store_true", help="with --merge: the value at each checkpoint, per entry")
    p.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="the entries' training clocks: wall time, or this process's CPU time (less disturbed by a loaded machine)",
    )
    args = p.parse_args()
    if args.merge:
        runs = [json.loads(f.read_text()) for f in args.merge]
        clocks = {r.get("clock", "wall") for r in runs}
        if len(clocks) > 1 or len({r["data"]["data"] for r in runs}) > 1:
            raise ValueError(f"--merge: the files mix clocks {clocks} or data sets; merge runs of one kind")
        results = [r for run in runs for r in run["results"]]
        targets = args.targets or runs[0]["targets"]
        unit = "bits/dim" if runs[0]["data"]["unit"] == "bits/dim" else "NLL"
        print(f"{clocks.pop()} clock\n" + summarize(results, targets, runs[0]["true_nll"], unit))
        if args.values:
            print("\n" + values_at_checkpoints(results, unit))
        return
    CLOCK[0] = time.process_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(1)
    problem = make_problem(args.data, args.test_size)
    if args.entries is None:
        args.entries = list(ENTRIES) if args.data in TOY else list(DEFAULT_ENTRIES)
    unit = "bits/dim" if problem.unit == "bits/dim" else "NLL"
    print(
        f"{machine()}; load average at start {os.getloadavg()}; data {args.data} (dim {problem.dim}, batch "
        f"{problem.batch}, {problem.x_test.shape[0]} test rows{'; ' + problem.note if problem.note else ''}); "
        f"true NLL {problem.true}",
        flush=True,
    )
    costs = step_costs(args.entries, args, problem)
    print(
        "ms per training step (median of 5 interleaved repeats): "
        + ", ".join(f"{k} {v:.2f}" for k, v in costs.items()),
        flush=True,
    )
    results = []
    for seed in args.seeds:
        results += run_interleaved(args.entries, args, seed, problem)
    print(f"load average at end {os.getloadavg()}")
    targets = args.targets or problem.default_targets() or auto_targets(results)
    text = summarize(results, targets, problem.true, unit)
    print(text)
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                dict(
                    results=results,
                    step_ms=costs,
                    targets=targets,
                    targets_from_run=not (args.targets or problem.default_targets()),
                    true_nll=problem.true,
                    data=describe(problem),
                    machine=machine(),
                    clock=args.clock,
                ),
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
