"""Does odeflow's flow matching learn faster per iteration when the net reads T - t?

odeflow's CNFs put data at t = 0, where FFJORD's concatsquash layers lose their time features;
the flow-matching libraries put data at their t = 1. Same net (the benchmark's FFJORD toy net,
same initial weights per seed), same batches, same noise/time stream per seed; the only change
is the net's time input (`odeflow.nn.ReversedTime`). Exact-trace test NLL by dopri5 1e-5 on 2,000
shared test points after each number of iterations, with the NFE of that solve.

Usage: PYTHONPATH=src python experiments/fm_net_time.py 8gaussians 0,1,2 500,1000,2000,4000
Results: experiments/fm_net_time.json (8gaussians to 4000 iterations, checkerboard to 8000).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from odeflow.data.toy2d import sample_toy
from odeflow.flows import CNF, FlowMatching
from odeflow.nn import ReversedTime

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from cnf_objectives import evaluate, fresh_net, true_nll  # noqa: E402


def curve(data: str, seed: int, reversed_time: bool, checks, x_test):
    net = fresh_net(seed)
    field = ReversedTime(net, 1.0) if reversed_time else net
    fm = FlowMatching(CNF(field, 2, T=1.0), generator=torch.Generator().manual_seed(seed))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    out = []
    for it in range(1, checks[-1] + 1):
        loss, _ = fm.loss(sample_toy(data, 256, seed=1000 * seed + it))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if it in checks:
            nll, nfe = evaluate(field, 1.0, x_test)
            out.append((it, round(nll, 4), nfe))
    return out


def main() -> None:
    data, seeds, checks = (
        sys.argv[1],
        [int(s) for s in sys.argv[2].split(",")],
        [int(c) for c in sys.argv[3].split(",")],
    )
    torch.set_num_threads(1)
    x_test = sample_toy(data, 2000, seed=99_999)
    results = {}
    for seed in seeds:
        for name, rev in (("t", False), ("T-t", True)):
            results[f"{seed}/{name}"] = curve(data, seed, rev, checks, x_test)
            print(data, seed, name, results[f"{seed}/{name}"], flush=True)
    print("true NLL", true_nll(data, x_test))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
