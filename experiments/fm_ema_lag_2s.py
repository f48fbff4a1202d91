"""MINIBOONE-shaped after 2 CPU seconds of training: the flow-matching defaults scored with the EMA
(what the command line evaluates) and with the raw weights, beside flow_matching at lr 3e-3.

Uses benchmarks/cnf_objectives.py's entries (same net, initial weights, batches and evaluator:
exact-trace test NLL, dopri5 1e-5, first 300 test rows), one torch thread, the CPU clock; entries
run one after the other per seed (not interleaved). Output: benchmarks/results/fm_ema_lag_2s.log.

Usage: OMP_NUM_THREADS=1 PYTHONPATH=src python experiments/fm_ema_lag_2s.py
"""

import sys
import time
import types
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import cnf_objectives as co  # noqa: E402
from cnf_objectives_data import make_problem  # noqa: E402


def main() -> None:
    co.CLOCK[0] = time.process_time
    torch.set_num_threads(1)
    problem = make_problem("miniboone-shaped", 300)
    args = types.SimpleNamespace(budget=2.0, checkpoints=[2.0])
    for seed in (0, 1, 2):
        for name in ("odeflow-fm-default", "flow_matching-lr3"):
            e = co.Entry(name, args, seed, problem)
            e.advance(2.0)
            line = f"seed {seed} {name}: it {e.it}, evaluated {e.curve[-1][2]:.3f}"
            if e.ema is not None:
                raw, _ = problem.evaluate(e.eval_net, e.T)
                line += f", raw weights {raw:.3f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
