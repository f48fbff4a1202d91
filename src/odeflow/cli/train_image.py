"""`odeflow train image`: multiscale CNFs (FFJORD / RNODE / TO-FLOW) on digits, MNIST,
Fashion-MNIST or CIFAR-10.

Settings come from the defaults, then a config file (`--config configs/mnist_rnode.toml`, keys
as in `ImageConfig`; without --config, configs/image_<data>.toml if it exists, e.g. the fast digits
recipe), then the options given on the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Dict

from .config_cli import add_options, options_of
from .config_options import make_config
from .fm_defaults import apply_flow_matching_defaults, note_flow_matching_defaults
from .training_run import report_errors

DEFAULT_OUT = "runs/image"

# what the config dataclass cannot say (every other option is generated from its fields)
_SPECIAL: Dict[str, Any] = {
    "--step-size": ("step_size", dict(type=float, help="fixed step; 0 for adaptive steps with --rtol/--atol")),
    "--no-zero-init": ("zero_init", dict(action="store_false", help="PyTorch-default init (FFJORD) instead of f = 0")),
}


def register(train_sub: argparse._SubParsersAction) -> None:
    from ..tasks.image_config import ImageConfig

    p = train_sub.add_parser("image", help="train a multiscale image CNF (bits/dim, sample grids)")
    add_options(p, ImageConfig, options_of(ImageConfig, _SPECIAL, skip={"val_rtol", "val_atol"}), DEFAULT_OUT)
    note_flow_matching_defaults(p)
    p.set_defaults(run=run)


def _adjust(values: Dict[str, Any]) -> Dict[str, Any]:
    if values.get("step_size") == 0:
        values["step_size"] = None
    return values


def make_image_config(args: argparse.Namespace):
    """Defaults, then --config or, without it, configs/image_<data>.toml when there is one (the
    fast default recipe for digits), then the options given."""
    from ..tasks.image import default_image_config_file
    from ..tasks.image_config import ImageConfig

    named = getattr(args, "config", None) is not None  # a file the user named counts as said
    if not named and getattr(args, "resume", None) is None:
        args.config = default_image_config_file(getattr(args, "data", ImageConfig.data))
    fields = {f.name for f in dataclasses.fields(ImageConfig)}
    given = {k for k in vars(args) if k in fields}  # options not given are absent (SUPPRESS)

    def adjust(values: Dict[str, Any]) -> Dict[str, Any]:
        apply_flow_matching_defaults(values, explicit=set(values) if named else given)
        return _adjust(values)

    return make_config(ImageConfig, args, DEFAULT_OUT, adjust=adjust)


@report_errors
def run(args: argparse.Namespace) -> int:
    from ..tasks.image import train_image
    from ..training.distributed import is_main_process

    cfg, out, resume = make_image_config(args)
    s = train_image(cfg, out, progress=not args.quiet, resume=resume, tensorboard=args.tensorboard)
    if is_main_process():
        kind = "flow matching" if cfg.objective == "flow-matching" else f"{cfg.mode} {cfg.method}"
        print(
            f"image {cfg.data} ({kind}): {s['iterations']} iterations, {s['ms_per_iter']:.0f} ms/iter; "
            f"bits/dim train {s['train_bits_per_dim']:.3f}, val {s['val_bits_per_dim']:.3f}, "
            f"test {s['test_bits_per_dim']:.3f} ± {s['test_bits_per_dim_se']:.3f} [{s['test_eval_divergence']}, "
            f"{s['test_bits_per_dim_solver']}, NFE {s['test_nfe']:.0f}]; samples in {out}/samples.png"
        )
    return 0


def sample_image(args: argparse.Namespace, state) -> int:
    """`odeflow sample RUN/best.pt --out grid.png` for image runs: a PNG grid (or .npy floats in [0, 1])."""
    import math

    import numpy as np
    import torch

    from ..plotting_images import save_image_grid
    from ..tasks.image import load_image_flow
    from .solver_options import chosen_solver

    if args.out.suffix not in (".png", ".npy"):
        raise ValueError(f"image runs write a PNG grid or a .npy array: give --out samples.png; got {args.out}")
    flow, cfg = load_image_flow(args.checkpoint)
    solver = chosen_solver(args) or cfg.val_solver()
    flow.set_solver(*solver)
    with torch.no_grad():
        x = flow.sample(args.n, generator=torch.Generator().manual_seed(args.seed)).clamp(0, 1)
    if args.out.suffix == ".npy":
        args.out.parent.mkdir(parents=True, exist_ok=True)
        np.save(args.out, x.numpy())
    else:
        save_image_grid(x, args.out, nrow=int(math.ceil(math.sqrt(args.n))))
    print(f"wrote {args.n} samples ({cfg.data}, solver {solver[0]}) to {args.out}")
    return 0
