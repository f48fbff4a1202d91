"""Shared CLI options for choosing a solver at evaluation time (re-discretization); torch loads only
when a command runs, not to parse its options."""

from __future__ import annotations

import argparse
from typing import Any, Optional, Tuple


def add_solver_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", default=None, help="solver method (default: the one the flow was trained with)")
    p.add_argument("--step-size", type=float, default=None, help="fixed step size; omit for adaptive steps")
    p.add_argument("--rtol", type=float, default=None, help="adaptive relative tolerance (default 1e-5)")
    p.add_argument("--atol", type=float, default=None, help="adaptive absolute tolerance (default 1e-5)")


def chosen_solver(args: argparse.Namespace) -> Optional[Tuple[str, Any]]:
    """(method, step) from the options, or None to keep the trained solver."""
    if args.method is None and args.step_size is None and args.rtol is None and args.atol is None:
        return None
    from ..solvers.methods import METHODS
    from ..training.schedule import make_step

    method = args.method or ("rk4" if args.step_size else "dopri5")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(sorted(METHODS))}")
    return method, make_step(args.step_size, None, args.rtol or 1e-5, args.atol or 1e-5)


def describe_step(step: object) -> str:
    """A short label: 'h=0.05', 'steps=4' or 'rtol=1e-05 atol=1e-05'."""
    from ..solvers.stepping import Adaptive, FixedStep

    if isinstance(step, FixedStep):
        return f"steps={step.steps}" if step.steps else f"h={step.h}"
    if isinstance(step, Adaptive):
        return f"rtol={step.rtol:g} atol={step.atol:g}" if isinstance(step.rtol, float) else repr(step)
    return repr(step)
