"""One flow-matching training iteration: odeflow's Trainer (the path `odeflow train cnf
--objective flow-matching` runs) against torchcfm's and Meta's flow_matching loops, side by side.

Every entry trains FFJORD's toy net (ODENet 2-64-64-64-2, concatsquash, tanh; the same initial
weights) on 8gaussians batches of 256 drawn by the same `sample_toy` call per iteration (seed,
iteration), one torch thread, in one process. Each entry runs blocks of `--block` iterations;
the blocks of the entries are interleaved round-robin (`_timing.time_loops_side_by_side`), so a
change of load falls on all alike. An iteration's time is the interval between the starts of
consecutive iterations (batch draw, step and everything the loop does after it; the first
`--warmup` of a block left out; `--clock cpu` counts this process's CPU time instead of wall
time, which a loaded machine disturbs less). Reported: the median ms per iteration of each entry over all
its blocks, and its ratio to the fastest peer.

  odeflow (CLI path)    `Trainer` on task `cnf` with the flow-matching settings the command line
                        uses (no multilevel stages, EMA 0.99, validation and last.pt every 500
                        iterations: neither inside a block), a run folder (a metrics.csv line per
                        iteration) and the progress bar (to a buffer).
  odeflow (no folder)   the same Trainer without a run folder or progress bar (the API).
  odeflow bare loop     `FlowMatching.loss`, backward, the Trainer's optimizer (`make_optimizer`),
                        no Trainer; "+ EMA" with the EMA update the Trainer runs (0.99): what
                        the engine adds is the difference between that and the line above.
  torchcfm              ConditionalFlowMatcher(sigma=0): sample_location_and_conditional_flow,
                        MSE, torch.optim.Adam as in its examples (lr 1e-3).
  flow_matching         AffineProbPath(CondOTScheduler()).sample, MSE, torch.optim.Adam.
  torchcfm / flow_matching + fused Adam   the peers' loops with torch.optim.Adam(fused=True),
                        the optimizer odeflow's Trainer uses on the CPU (shown for transparency:
                        the peers' users can switch it on too).

Usage: PYTHONPATH=src python benchmarks/fm_step.py [--block 300 --repeats 5 --json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List

import torch
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _timing import machine, time_loops_side_by_side  # noqa: E402

from odeflow.data.toy2d import sample_toy  # noqa: E402
from odeflow.flows import CNF, FlowMatching  # noqa: E402
from odeflow.nn import ODENet  # noqa: E402

BATCH, LR, SEED = 256, 1e-3, 0
CLOCK: List[Callable[[], float]] = [time.perf_counter]  # --clock cpu: time.process_time


def fresh_net() -> nn.Module:
    torch.manual_seed(SEED)
    return ODENet(2, (64, 64, 64))


def draw(it: int) -> Tensor:
    return sample_toy("8gaussians", BATCH, seed=SEED * 1_000_003 + it)


def odeflow_trainer(folder: bool) -> Callable[[int], List[float]]:
    """A fresh Trainer run of n iterations; the start times of its iterations."""
    from odeflow.tasks.cnf2d_config import CNFConfig
    from odeflow.tasks.run import build_task
    from odeflow.training import Trainer

    def run(n: int) -> List[float]:
        cfg = CNFConfig(
            objective="flow-matching",
            iterations=n,
            schedule=None,
            lr=LR,
            val_every=500,  # the command line's flow-matching defaults (none inside a block)
            checkpoint_every=500,
            val_size=16,
            test_max=16,
            zero_init=False,
            seed=SEED,
        )
        task = build_task("cnf", cfg)
        stamps: List[float] = []
        task.before_iteration = lambda it, ctx: stamps.append(CLOCK[0]())  # type: ignore[method-assign]
        with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stderr(io.StringIO()):
            out = Path(tmp) / "run" if folder else None
            Trainer(task, out, quiet=not folder).fit()
        return stamps

    return run


def loop(
    make_loss: Callable[[nn.Module], Callable[[Tensor], Tensor]], optimizer: str, ema: bool = False
) -> Callable[[int], List[float]]:
    """A plain training loop of n iterations (draw, zero_grad, loss, backward, step[, EMA])."""

    def run(n: int) -> List[float]:
        net = fresh_net()
        loss_fn = make_loss(net)
        average = None
        if ema:
            from odeflow.tasks.objective_config import FM_EMA_DECAY
            from odeflow.training.ema import EMA

            average = EMA(net, FM_EMA_DECAY)
        if optimizer == "odeflow":
            from odeflow.tasks.cnf2d_config import CNFConfig
            from odeflow.training.optim import make_optimizer

            opt = make_optimizer(CNFConfig(lr=LR), net.parameters())
        else:
            opt = torch.optim.Adam(net.parameters(), lr=LR, fused=optimizer == "fused" or None)
        stamps: List[float] = []
        for it in range(n):
            stamps.append(CLOCK[0]())
            x = draw(it)
            opt.zero_grad(set_to_none=True)
            loss_fn(x).backward()
            opt.step()
            if average is not None:
                average.update()
        stamps.append(CLOCK[0]())
        return stamps

    return run


def odeflow_loss(net: nn.Module) -> Callable[[Tensor], Tensor]:
    fm = FlowMatching(CNF(net, 2, T=1.0))
    return lambda x: fm.loss(x)[0]


def torchcfm_loss(net: nn.Module) -> Callable[[Tensor], Tensor]:
    from torchcfm.conditional_flow_matching import ConditionalFlowMatcher

    matcher = ConditionalFlowMatcher(sigma=0.0)

    def loss(x1: Tensor) -> Tensor:
        x0 = torch.randn_like(x1)
        t, xt, ut = matcher.sample_location_and_conditional_flow(x0, x1)
        return ((net(t, xt) - ut) ** 2).mean()

    return loss


def flow_matching_loss(net: nn.Module) -> Callable[[Tensor], Tensor]:
    from flow_matching.path import AffineProbPath
    from flow_matching.path.scheduler import CondOTScheduler

    path = AffineProbPath(scheduler=CondOTScheduler())

    def loss(x1: Tensor) -> Tensor:
        x0 = torch.randn_like(x1)
        t = torch.rand(x1.shape[0])
        sample = path.sample(x_0=x0, x_1=x1, t=t)
        return ((net(sample.t, sample.x_t) - sample.dx_t) ** 2).mean()

    return loss


ENTRIES: Dict[str, Callable[[], Callable[[int], List[float]]]] = {
    "odeflow (CLI path)": lambda: odeflow_trainer(folder=True),
    "odeflow (no folder)": lambda: odeflow_trainer(folder=False),
    "odeflow bare loop": lambda: loop(odeflow_loss, "odeflow"),
    "odeflow bare loop + EMA": lambda: loop(odeflow_loss, "odeflow", ema=True),
    "torchcfm": lambda: loop(torchcfm_loss, "default"),
    "flow_matching": lambda: loop(flow_matching_loss, "default"),
    "torchcfm + fused Adam": lambda: loop(torchcfm_loss, "fused"),
    "flow_matching + fused Adam": lambda: loop(flow_matching_loss, "fused"),
}
PEERS = ("torchcfm", "flow_matching")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--block", type=int, default=300, help="iterations per block")
    p.add_argument("--warmup", type=int, default=20, help="iterations of each block left out")
    p.add_argument("--repeats", type=int, default=5, help="blocks per entry")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument(
        "--clock", choices=["wall", "cpu"], default="wall", help="cpu: this process's CPU time (less hit by load)"
    )
    args = p.parse_args()
    CLOCK[0] = time.process_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(1)
    start_load = os.getloadavg()
    runs = {name: make() for name, make in ENTRIES.items()}
    ms = {k: 1e3 * v for k, v in time_loops_side_by_side(runs, args.block, args.repeats, args.warmup).items()}
    fastest = min(ms[k] for k in PEERS)
    print(f"{machine()}; {args.clock} clock; load average {start_load} at start, {os.getloadavg()} at end")
    print("| entry | ms per iteration (median) | / fastest peer |\n|---|---|---|")
    for name, v in ms.items():
        print(f"| {name} | {v:.3f} | {v / fastest:.2f} |")
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                dict(ms_per_iteration=ms, fastest_peer_ms=fastest, machine=machine(), args=vars(args)),
                indent=1,
                default=str,
            )
        )


if __name__ == "__main__":
    main()
