"""Reproduce seed 000 §4.1 (Figs. 2–5 and the time-saved claim) with odeflow.

Usage: python experiments/timeseries_seed000.py [N_SEEDS] [OUT] [--compile]
Writes the run folders, figures and comparison table; docs/timeseries.md quotes them.
"""

import sys
from pathlib import Path

import torch

from odeflow.tasks.timeseries import TimeSeriesConfig
from odeflow.tasks.timeseries_compare import compare_modes, comparison_table

if __name__ == "__main__":
    torch.set_num_threads(1)
    args = [a for a in sys.argv[1:] if a != "--compile"]
    n_seeds = int(args[0]) if len(args) > 0 else 10
    out = Path(args[1]) if len(args) > 1 else Path("docs/timeseries")
    cfg = TimeSeriesConfig(
        iterations=300,
        lr=0.1,
        rtol=1e-7,
        atol=1e-9,
        check_at=[14, 24],
        snapshot_at=[0, 25, 100, 300],
        loss_threshold=1.0,
        compile="--compile" in sys.argv,
    )
    results = compare_modes(cfg, list(range(n_seeds)), out, progress=True)
    print(comparison_table(results, cfg.loss_threshold))
