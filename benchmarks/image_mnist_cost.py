"""Per-iteration CPU cost of the MNIST image-CNF configs on a synthetic 28x28 batch.

No MNIST files are needed: the batch is uniform random bytes (the cost of a fixed-grid
iteration does not depend on the pixel values; the adaptive FFJORD/TO-FLOW one does, through
the step count, so its number is the cost at initialisation). One training iteration =
dequantize, loss (bits/dim + RNODE terms), backward, Adam step. Reported per iteration: wall
seconds and the process's CPU seconds (time.process_time, one thread), which stay meaningful
on a shared machine; and the NFE. Batch sizes below 200 are extrapolated linearly from two
measured sizes.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/image_mnist_cost.py --config configs/mnist_rnode.toml --batches 4 8
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import tomllib
import torch

from odeflow.flows.image_transforms import dequantize
from odeflow.tasks.image import ImageConfig, build_image_flow


def measure(cfg: ImageConfig, batch: int, repeats: int) -> dict:
    flow = build_image_flow(cfg)
    opt = torch.optim.Adam(flow.theta(), lr=cfg.lr)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (batch, 1, 28, 28), dtype=torch.uint8, generator=g)
    out = []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        opt.zero_grad(set_to_none=True)
        loss, parts = flow.loss(dequantize(x, g))
        loss.backward()
        opt.step()
        nfe = flow.nfe
        out.append(
            dict(
                wall=time.perf_counter() - wall,
                cpu=time.process_time() - cpu,
                nfe_forward=nfe[0],
                nfe_backward=nfe[1],
                bits_per_dim=float(parts["bits_per_dim"]),
            )
        )
    best = min(out, key=lambda r: r["cpu"])
    return dict(batch=batch, **best)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, required=True)
    p.add_argument("--batches", type=int, nargs=2, default=[4, 8])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", type=Path, default=None, help="append the JSON result to this file")
    args = p.parse_args()
    values = tomllib.loads(args.config.read_text())
    if values.get("step_size") == 0:
        values["step_size"] = None
    cfg = ImageConfig(**values)
    torch.set_num_threads(1)
    rows = [measure(cfg, b, args.repeats) for b in args.batches]
    (b1, r1), (b2, r2) = [(r["batch"], r) for r in rows]
    slope = (r2["cpu"] - r1["cpu"]) / (b2 - b1)
    result = dict(
        config=str(args.config),
        params=sum(p.numel() for p in build_image_flow(cfg).theta()),
        measured=rows,
        cpu_s_per_iter_batch200=r2["cpu"] + slope * (cfg.batch - b2),
        cpu_s_per_image=slope,
        torch_threads=torch.get_num_threads(),
    )
    print(json.dumps(result, indent=1))
    if args.out is not None:
        with args.out.open("a") as fh:
            fh.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
