"""`odeflow train cnf`: FFJORD on a toy 2-D density, with RNODE, TO-FLOW and multilevel options.

Settings come from the defaults, then a config file (`--config run.json` or `.toml`, keys as in
`CNFConfig`, `schedule` as a list of stages), then the options given on the command line.
"""

from __future__ import annotations

import argparse
from typing import Any, Dict

from .config_cli import add_options, compile_option, options_of
from .config_options import make_config
from .fm_defaults import apply_flow_matching_defaults, note_flow_matching_defaults
from .training_run import report_errors

DEFAULT_OUT = "runs/cnf"

# what the dataclass cannot say (every other option is generated from CNFConfig's fields)
_SPECIAL: Dict[str, Any] = {
    "--compile": compile_option("for CNFs auto stays eager: their compiled C++ build takes minutes"),
    "--step-size": ("step_size", dict(type=float, help="fixed step; 0 for adaptive steps with --rtol/--atol")),
    "--schedule": (
        "schedule",
        dict(
            help="multilevel stages, e.g. 'until=500 method=rk4 step=0.5 lr=1e-3; "
            "until=1000 method=rk4 step=0.25 lr=5e-4'"
        ),
    ),
}


def register(train_sub: argparse._SubParsersAction) -> None:
    from ..tasks.cnf2d_config import CNFConfig

    p = train_sub.add_parser("cnf", help="train a continuous normalizing flow on a toy 2-D density")
    add_options(p, CNFConfig, options_of(CNFConfig, _SPECIAL), DEFAULT_OUT)
    note_flow_matching_defaults(p)
    p.set_defaults(run=run)


def _adjust(values: Dict[str, Any]) -> Dict[str, Any]:
    from ..training.schedule import parse_schedule, schedule_as_dicts

    if values.get("step_size") == 0:
        values["step_size"] = None
    if "schedule" in values:
        values["schedule"] = schedule_as_dicts(parse_schedule(values["schedule"])) or None
    elif values.get("objective") == "flow-matching":
        # The default stages are the likelihood recipe's solvers and rates; flow matching uses --lr.
        values["schedule"] = None
    elif SOLVER_AND_RATE & set(values):
        # The default stages set their own solver and rate; a user who sets them means a plain run.
        values["schedule"] = None
    apply_flow_matching_defaults(values, explicit=set(values))  # options and the user's config file
    if values.get("objective") == "flow-matching" and "val_every" not in values:
        # A flow-matching step costs one net evaluation; a validation (dopri5 1e-5, exact trace, 2048
        # rows) costs about 100 of them: every 50 steps it took 2x the training time.
        values["val_every"] = FLOW_MATCHING_VAL_EVERY
    if values.get("objective") == "flow-matching" and "checkpoint_every" not in values:
        # last.pt every 100 steps of ~2 ms was 5 writes a second (5 ms each, 2-3 % of the training)
        values["checkpoint_every"] = FLOW_MATCHING_VAL_EVERY
    return values


FLOW_MATCHING_VAL_EVERY = 500

# Options that replace the default multilevel stages (they set what the stages would override).
SOLVER_AND_RATE = {"lr", "method", "step_size", "n_steps", "rtol", "atol"}


def make_cnf_config(args: argparse.Namespace):
    from ..tasks.cnf2d_config import CNFConfig

    return make_config(CNFConfig, args, DEFAULT_OUT, adjust=_adjust)


def phases(summary: Dict[str, Any]) -> str:
    """' (flow matching 2.1, likelihood 45.0)' where a run had both kinds of iterations."""
    fm, ll = summary.get("ms_per_iter_flow_matching"), summary.get("ms_per_iter_likelihood")
    return f" (flow matching {fm:.1f}, likelihood {ll:.1f})" if fm is not None and ll is not None else ""


@report_errors
def run(args: argparse.Namespace) -> int:
    from ..tasks.cnf2d import train_cnf
    from ..training.distributed import is_main_process

    cfg, out, resume = make_cnf_config(args)
    s = train_cnf(cfg, out, progress=not args.quiet, resume=resume, tensorboard=args.tensorboard)
    t, r = s["trained_solver"], s["rediscretized_dopri5"]
    if is_main_process():
        trace = "exact trace" if t.get("divergence", "exact") == "exact" else f"Hutchinson, {t.get('probes')} probes"
        print(
            f"{cfg.objective} {cfg.mode}: {s['iterations']} iterations, {s['ms_per_iter']:.1f} ms/iter{phases(s)}, "
            f"T = {s['T']:.3f}; test NLL ({trace}, {s.get('test_rows', '?')} rows) {t['nll']:.3f} "
            f"± {t.get('nll_se', float('nan')):.3f} [{t.get('solver', cfg.method)}] (inverse error "
            f"{t['inverse_error']:.2e}, NFE {t['nfe']:.0f}); re-discretized: NLL {r['nll']:.3f} ± "
            f"{r.get('nll_se', float('nan')):.3f} [{r.get('solver', 'dopri5 rtol=1e-05 atol=1e-05')}], inverse error "
            f"{r['inverse_error']:.2e}, NFE {r['nfe']:.0f}; run folder {out}"
        )
    return 0
