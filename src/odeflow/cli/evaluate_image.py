"""`odeflow evaluate RUN` for image runs: test bits/dim with the Hutchinson estimate (default, K probes,
with a standard error) or the exact trace, with the trained or any other solver."""

from __future__ import annotations

import argparse
import json
from typing import Any, Dict

IMAGE_EVAL_DIVERGENCE = "hutchinson"  # the default trace for image runs (the exact one costs D VJPs per step)


def evaluate_image(args: argparse.Namespace, state: Dict[str, Any]) -> int:
    """Bits/dim (± its standard error), NFE of one forward solve per block and the inverse error
    ||f^-1(f(x)) - x||_2 (mean over images, [0, 1] pixel units) on the first --n test images. Without
    --seed the images carry the dequantization noise of the run's own test evaluation (summary.json);
    --seed S draws fresh noise."""
    import torch

    from ..data.images import load_images
    from ..flows.evaluation import evaluate_density, image_bits_per_dim
    from ..flows.image_transforms import dequantize
    from ..tasks.image import evaluation_images, load_image_flow
    from .evaluate import density_options
    from .solver_options import chosen_solver, describe_step

    flow, cfg = load_image_flow(args.checkpoint)
    if args.data is not None and args.data != cfg.data:
        raise ValueError(f"--data {args.data}: this run was trained on {cfg.data!r}; omit --data for image runs")
    if args.seed is None:
        x_train = load_images(cfg.data, cfg.data_dir, "train")[0]
        val_rows = len(load_images(cfg.data, cfg.data_dir, "val")[0])
        x = evaluation_images(cfg, x_train, val_rows, args.n)[1]
    else:
        x = dequantize(
            load_images(cfg.data, cfg.data_dir, "test")[0][: args.n], torch.Generator().manual_seed(args.seed)
        )
    method, step = chosen_solver(args) or cfg.val_solver()
    density = evaluate_density(flow, x, method, step, chunk=cfg.eval_batch, **density_options(args))
    r = image_bits_per_dim(density, flow.dim)
    result = dict(
        checkpoint=str(args.checkpoint),
        data=cfg.data,
        n=len(x),
        method=method,
        step=describe_step(step),
        test_bits_per_dim=r["bits_per_dim"],
        test_bits_per_dim_se=r["bits_per_dim_se"],
        **{k: v for k, v in r.items() if k not in ("bits_per_dim", "bits_per_dim_se")},
    )
    if args.json:
        print(json.dumps(result))
    else:
        trace = "exact trace" if r["divergence"] == "exact" else f"Hutchinson, {r['probes']} probe(s)"
        print(
            f"{cfg.data} test (n={len(x)}) with {method} {describe_step(step)}: {r['bits_per_dim']:.4f} ± "
            f"{r['bits_per_dim_se']:.4f} bits/dim ({trace}), NFE {r['nfe']:.0f}, inverse error {r['inverse_error']:.2e}"
        )
    return 0
