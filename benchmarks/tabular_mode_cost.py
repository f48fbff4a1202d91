"""Issue 23 item 6: where a training iteration's time goes, Disc-Opt against Opt-Disc, on the
built-in `digits` set with configs/digits.toml (seed 000's tabular recipe scaled to one core).

Both modes are measured on the SAME weights, at initialisation and after each of `--points`
Disc-Opt iterations (the two modes follow the same trajectory per iteration, docs/tabular.md, so this is
the model Opt-Disc would have reached too). Per mode: NFE forward / backward per iteration, CPU
seconds of the forward pass and of the backward pass, and the cost of one field evaluation in
each role: f alone, f + Hutchinson VJP (the forward stage), and that stage's backward (what
Disc-Opt's backward pays per stage; the adjoint pays one VJP of the augmented field per
backward evaluation). Side by side in one process, one thread, CPU time (time.process_time).

Usage: OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/tabular_mode_cost.py [--points 0 100 ...]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Dict

import torch

from odeflow.data.tabular import load_tabular
from odeflow.flows.divergence import sample_noise
from odeflow.tasks.tabular import build_tabular_flow, read_tabular_config
from odeflow.training.data import EpochBatches
from odeflow.training.distributed import Distributed

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "digits.toml"


def _cpu(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def iteration_cost(flow, x: torch.Tensor, repeat: int = 3) -> Dict[str, Any]:
    """Forward and backward CPU seconds of one training iteration and the NFE counts."""
    fwd, bwd = [], []
    for _ in range(repeat):
        torch.manual_seed(1)
        start = time.process_time()
        loss, _ = flow.loss(x)
        mid = time.process_time()
        loss.backward()
        end = time.process_time()
        fwd.append(mid - start)
        bwd.append(end - mid)
        for p in flow.parameters():
            p.grad = None
    stats = flow.nfe
    return dict(
        forward_s=min(fwd),
        backward_s=min(bwd),
        total_s=min(fwd) + min(bwd),
        nfe_forward=sum(s.nfe for s in stats),
        nfe_backward=sum(s.nfe_backward for s in stats),
        steps_forward=sum(s.steps for s in stats),
        rejected=sum(s.rejected for s in stats),
    )


def eval_costs(flow, x: torch.Tensor) -> Dict[str, float]:
    """CPU ms of one evaluation of the first block's field: f; f + Hutchinson VJP with a graph
    (Disc-Opt's forward stage); and the backward of that stage."""
    block = flow.blocks[0]
    t = torch.tensor(0.3, dtype=torch.float64)
    block._e = sample_noise(x, "gaussian")
    z = x.detach().requires_grad_(True)

    def f_only():
        with torch.no_grad():
            block.net(t, x)

    def stage():
        return block.rates(t, z, True, False)

    def stage_backward():
        f, div = stage()
        (f.sum() + div.sum()).backward()
        for p in flow.parameters():
            p.grad = None

    f_ms = 1e3 * _cpu(f_only, 10)
    s_ms = 1e3 * _cpu(stage, 10)
    sb_ms = 1e3 * _cpu(stage_backward, 10) - s_ms
    return dict(f_ms=f_ms, stage_ms=s_ms, stage_backward_ms=sb_ms)


def cumulative(results: Dict[str, Any], points) -> Dict[str, float]:
    """Speed-up to reach the model of iteration N (both modes take the same iterations): the ratio
    of the summed per-iteration costs, linear between measured points (trapezoids)."""
    out, do_sum, od_sum = {}, 0.0, 0.0
    for a, b in zip(points[:-1], points[1:]):
        ra, rb = results[f"at_{a}"], results[f"at_{b}"]
        do_sum += (b - a) * (ra["disc_opt"]["total_s"] + rb["disc_opt"]["total_s"]) / 2
        od_sum += (b - a) * (ra["opt_disc"]["total_s"] + rb["opt_disc"]["total_s"]) / 2
        out[str(b)] = od_sum / do_sum
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--points",
        type=int,
        nargs="+",
        default=[0, 100, 200, 300, 500, 800],
        help="Disc-Opt iterations at which both modes are measured",
    )
    p.add_argument("--out", type=Path, default=Path("docs/tabular/mode_cost.json"))
    args = p.parse_args()
    torch.set_num_threads(1)
    data = load_tabular("digits")
    do_cfg = read_tabular_config(CONFIG, "disc-opt", dtype="float32")
    od_cfg = read_tabular_config(CONFIG, "opt-disc", dtype="float32")
    do, od = build_tabular_flow(do_cfg, data.dim), build_tabular_flow(od_cfg, data.dim)
    x_train = torch.tensor(data.train, dtype=torch.float32)
    batches = EpochBatches(len(x_train), do_cfg.batch, 0, Distributed())
    x = x_train[batches.indices(0)]
    results: Dict[str, Any] = dict(
        config=str(CONFIG.name),
        batch=do_cfg.batch,
        dim=data.dim,
        disc_opt_solver=f"{do_cfg.method} h={do_cfg.step_size}",
        opt_disc_solver=f"{od_cfg.method} {od_cfg.rtol}/{od_cfg.atol} adjoint",
    )
    opt = torch.optim.Adam(do.parameters(), lr=do_cfg.lr)
    trained = 0
    for target in args.points:
        label = f"at_{target}"
        while trained < target:
            opt.zero_grad()
            do.loss(x_train[batches.indices(trained)])[0].backward()
            opt.step()
            trained += 1
        od.load_state_dict(do.state_dict())
        row = dict(
            iterations=trained,
            disc_opt=iteration_cost(do, x),
            opt_disc=iteration_cost(od, x),
            per_eval=eval_costs(do, x),
        )
        row["ratio_total"] = row["opt_disc"]["total_s"] / row["disc_opt"]["total_s"]
        results[label] = row
        print(label, json.dumps(row), flush=True)
    results["cumulative"] = cumulative(results, args.points)
    print(json.dumps(results["cumulative"]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
