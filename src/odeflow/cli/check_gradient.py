"""`odeflow check-gradient`: the seed 000 Taylor test on the built-in spiral regression problem."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Dict


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check-gradient", help="Taylor derivative check (seed 000 eq. 13) of a gradient mode")
    p.add_argument("--mode", choices=["disc-opt", "opt-disc"], default="disc-opt")
    p.add_argument("--rtol", type=float, default=1e-7, help="opt-disc tolerances (atol = rtol/100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="folder for check.png and check.json")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} is a file, not a folder; name a folder for check.png and check.json")
    import torch

    from .. import Adaptive, DiscretizeOptimize, FixedStep, OptimizeDiscretize, solve
    from ..gradients import derivative_check, plot_derivative_check
    from ..models import VectorFieldMLP
    from ..problems import SpiralField

    torch.manual_seed(args.seed)
    t = torch.linspace(0, 1.5, 30, dtype=torch.float64)
    u0 = torch.tensor([2.0, 0.0], dtype=torch.float64)
    data = solve(SpiralField(), u0, t, method="tsit5", step=Adaptive(1e-10, 1e-12)).ys
    model = VectorFieldMLP(2, (50,), "tanh", "cube", dtype=torch.float64)
    kw: Dict[str, Any]
    if args.mode == "disc-opt":
        kw = dict(method="rk4", step=FixedStep(1.5 / 29), gradient=DiscretizeOptimize())
    else:
        kw = dict(method="dopri5", step=Adaptive(args.rtol, args.rtol / 100), gradient=OptimizeDiscretize())
    loss = lambda: (solve(model, u0, t, **kw).ys - data).pow(2).sum()  # noqa: E731
    check = derivative_check(loss, list(model.parameters()), seed=args.seed)
    print(check.table())
    print("PASSED: the gradient is consistent" if check.passed else "FAILED: E1 does not decay like h^2")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        plot_derivative_check(check, str(args.out / "check.png"), f"derivative check ({args.mode})")
        (args.out / "check.json").write_text(json.dumps(check.__dict__, indent=1))
    return 0 if check.passed else 1
