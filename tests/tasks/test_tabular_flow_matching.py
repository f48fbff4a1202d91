"""Task `tabular` with --objective flow-matching: a stack trained by regression, then by
likelihood, evaluated with the Hutchinson estimate and its standard error."""

import csv
import math

import numpy as np

from odeflow.data.tabular import TabularData
from odeflow.tasks.tabular import TabularConfig, train_tabular


def test_flow_matching_stack_then_likelihood_with_hutchinson_test(tmp_path):
    rng = np.random.RandomState(1)
    x = rng.randn(240, 3) @ np.diag([0.5, 1.0, 1.5])
    data = TabularData("tiny", x[:160], x[160:200], x[200:])
    cfg = TabularConfig(
        data="digits",
        objective="flow-matching",
        coupling="minibatch-ot",
        finetune_likelihood=2,
        iterations=6,
        val_every=3,
        batch=40,
        blocks=2,
        layers=1,
        multiplier=2,
        T=0.5,
        step_size=0.25,
        fine_factor=2,
        dtype="float64",
        eval_divergence="hutchinson",
        eval_probes=2,
        test_max=30,
    )
    cfg.validate()
    s = train_tabular(cfg, tmp_path / "run", progress=False, data=data)
    assert s["test_rows"] == 30 and s["objective"] == "flow-matching" and s["eval_probes"] == 2
    assert s["test_nll_dopri5_solver"] == "dopri5 rtol=1e-06 atol=1e-08" and s["test_nll_dopri5_se"] > 0
    assert math.isfinite(s["test_nll"])
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert [math.isnan(float(r["nll"])) for r in rows] == [True] * 4 + [False] * 2
