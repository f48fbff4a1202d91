"""configs/cnf_fast.toml (issue 18 item 1's fast CNF recipe) parses and trains through the CLI."""

import csv
import json
from pathlib import Path

from odeflow.cli.main import main

FAST = Path(__file__).resolve().parents[2] / "configs" / "cnf_fast.toml"


def test_fast_recipe_config_trains_three_iterations(tmp_path):
    run = tmp_path / "fast"
    code = main(
        [
            "train",
            "cnf",
            "--config",
            str(FAST),
            "--iterations",
            "3",
            "--val-every",
            "3",
            "--val-size",
            "64",
            "--quiet",
            "--out",
            str(run),
        ]
    )
    assert code == 0
    cfg = json.loads((run / "config.json").read_text())
    assert (cfg["divergence"], cfg["lr"], cfg["learn_T"], cfg["zero_init"]) == ("hutchinson", 1e-2, False, True)
    assert (cfg["kinetic"], cfg["jacobian"], cfg["val_method"]) == (0.01, 0.01, "dopri5")
    assert [(s["until"], s["steps"], s["lr"]) for s in cfg["schedule"]] == [
        (50, 2, 1e-2),
        (150, 2, 1e-3),
        (151, 4, 5e-4),
    ]
    with (run / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3
    assert [int(float(r["nfe_forward"])) for r in rows] == [8, 8, 8]  # first stage: two rk4 steps
    summary = json.loads((run / "summary.json").read_text())
    assert summary["iterations"] == 3 and 0 < summary["test_nll_dopri5"] < 10
