"""configs/digits_fast.toml (issue 18 item 1's fast digits recipe) parses and trains through the CLI."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from odeflow.cli.main import main

FAST = Path(__file__).resolve().parents[2] / "configs" / "digits_fast.toml"


def test_digits_fast_config_trains_three_iterations(tmp_path):
    pytest.importorskip("sklearn")  # digits ships with scikit-learn (the 'tabular' extra)
    run = tmp_path / "digits_fast"
    assert (
        main(
            [
                "train",
                "tabular",
                "--config",
                str(FAST),
                "--mode",
                "disc-opt",
                "--iterations",
                "3",
                "--val-every",
                "3",
                "--val-max",
                "16",
                "--test-max",
                "16",
                "--quiet",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    cfg = json.loads((run / "config.json").read_text())
    assert (cfg["data"], cfg["lr"], cfg["method"], cfg["step_size"], cfg["batch"]) == ("digits", 5e-3, "rk4", 0.5, 200)
    assert (cfg["T"], cfg["multiplier"], cfg["divergence"]) == (1.0, 2, "hutchinson")
    with (run / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(float(r["nfe_forward"])) for r in rows] == [8, 8, 8]  # rk4, h = 0.5 on [0, 1]: 2 steps
    summary = json.loads((run / "summary.json").read_text())
    assert np.isfinite(summary["test_nll_dopri5"]) and summary["test_inverse_error_dopri5"] < 1e-5
