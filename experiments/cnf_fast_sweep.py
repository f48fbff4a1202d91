"""Search for odeflow's fastest honest recipe to test NLL 3.15 on 8gaussians (issue 18 item 1).

Each variant = the combined recipe of `make demo` plus overrides, trained by the Trainer and
validated every `--val-every` iterations with the shared evaluator of
benchmarks/cnf_time_to_nll.py (exact trace, dopri5 1e-5, 2,048 test points). Variants run in
parallel processes, one torch thread each (use a machine with a free core per variant).

Usage: PYTHONPATH=src python experiments/cnf_fast_sweep.py VARIANTS.json [--jobs N] [--out results.json]
VARIANTS.json: {"name": {overrides}, ...}
"""

import argparse
import json
import multiprocessing as mp
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def one(item):
    name, over, val_every, target = item
    import torch

    torch.set_num_threads(1)
    import cnf_time_to_nll as b

    from odeflow.data.toy2d import sample_toy

    args = argparse.Namespace(data="8gaussians", seed=over.pop("seed", 0), val_every=val_every, target=target)
    base = over.pop("base", "combined")
    x_test = sample_toy("8gaussians", 2048, seed=10_000 + args.seed)
    x_final = sample_toy("8gaussians", 2048, seed=20_000 + args.seed)
    try:
        r = b.odeflow_run(base, args, x_test, x_final, over)
    except Exception as err:  # report and go on with the other variants
        return dict(name=name, error=repr(err))
    r["name"] = name
    return r


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("variants", type=Path)
    p.add_argument("--jobs", type=int, default=os.cpu_count())
    p.add_argument("--val-every", type=int, default=5)
    p.add_argument("--target", type=float, default=3.15)
    p.add_argument("--out", type=Path, default=Path("sweep.json"))
    a = p.parse_args()
    variants = json.loads(a.variants.read_text())
    items = [(k, dict(v), a.val_every, a.target) for k, v in variants.items()]
    with mp.get_context("spawn").Pool(a.jobs) as pool:
        results = pool.map(one, items, chunksize=1)
    a.out.write_text(json.dumps(results, indent=1, default=str))
    for r in results:
        if "error" in r:
            print(f"{r['name']:28s} ERROR {r['error']}")
            continue
        hit = r["hit"]
        print(
            f"{r['name']:28s} hit {f'{hit[1]:.2f} s @ {hit[0]}' if hit else 'none':16s} "
            f"{r['ms_per_iter']:6.1f} ms/it  best {min(c[2] for c in r['curve']):.3f}  final {r['final']['nll']:.3f} "
            f"inv {r['final']['inverse_error']:.1e} T {r['T']:.3f}"
        )
