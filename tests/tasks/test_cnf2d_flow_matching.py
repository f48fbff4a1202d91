"""`odeflow train cnf --objective flow-matching`: the run, the likelihood fine-tuning, the
evaluation options and their mistakes."""

import csv
import json
import math

import pytest
import torch

from odeflow.cli.main import main
from odeflow.cli.train_cnf import FLOW_MATCHING_VAL_EVERY
from odeflow.data.toy2d import sample_toy
from odeflow.flows.evaluation import evaluate_density
from odeflow.nn import ReversedTime
from odeflow.solvers.stepping import Adaptive
from odeflow.tasks.cnf2d import load_flow
from odeflow.tasks.cnf2d_config import CNFConfig


def run(tmp_path, *extra):
    out = tmp_path / "fm"
    base = ["train", "cnf", "--objective", "flow-matching", "--hidden", "16", "16", "--batch", "64"]
    base += ["--val-size", "64", "--quiet", "--out", str(out)]
    assert main(base + list(extra)) == 0
    return out


def test_flow_matching_then_likelihood_finetuning(tmp_path, capsys):
    out = run(
        tmp_path, "--iterations", "6", "--val-every", "3", "--finetune-likelihood", "2", "--coupling", "minibatch-ot"
    )
    config = json.loads((out / "config.json").read_text())
    assert config["schedule"] is None and config["objective"] == "flow-matching"
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert len(rows) == 6
    # four regression steps (one net evaluation, no NLL), then two likelihood steps (a solve)
    assert all(math.isnan(float(r["nll"])) and float(r["nfe_forward"]) == 1 for r in rows[:4])
    assert all(math.isfinite(float(r["nll"])) and math.isnan(float(r["fm_loss"])) for r in rows[4:])
    s = json.loads((out / "summary.json").read_text())
    assert s["test_nll_dopri5_solver"] == "dopri5 rtol=1e-05 atol=1e-05"
    assert s["test_rows"] == 64 and s["test_nll_se"] > 0 and s["eval_divergence"] == "exact"
    # the two kinds of iterations timed apart; together they make the run's ms/iter
    fm_ms, ll_ms = s["ms_per_iter_flow_matching"], s["ms_per_iter_likelihood"]
    assert fm_ms > 0 and ll_ms > 0 and (4 * fm_ms + 2 * ll_ms) / 6 == pytest.approx(s["ms_per_iter"], rel=1e-9)
    printed = capsys.readouterr().out
    assert "flow-matching" in printed and "dopri5 rtol=1e-05" in printed
    assert f"(flow matching {fm_ms:.1f}, likelihood {ll_ms:.1f})" in printed


def test_hutchinson_evaluation_with_probes_and_test_max(tmp_path):
    out = run(
        tmp_path,
        "--iterations",
        "3",
        "--path",
        "vp",
        "--eval-divergence",
        "hutchinson",
        "--eval-probes",
        "3",
        "--test-max",
        "40",
    )
    s = json.loads((out / "summary.json").read_text())
    assert s["test_rows"] == 40 and s["eval_probes"] == 3 and s["trained_solver"]["divergence"] == "hutchinson"
    assert math.isfinite(s["test_nll"]) and s["test_nll_se"] > 0


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(finetune_likelihood=2), "objective flow-matching"),
        (dict(objective="flow-matching", finetune_likelihood=500, iterations=10), "exceeds iterations"),
        (dict(eval_probes=4), "hutchinson"),
        (dict(objective="flow-matching", learn_T=True), "learn_T"),
        (dict(objective="flow-matching", sigma_min=1.0), "sigma_min"),
        (dict(coupling="sinkhorn"), "coupling"),
        (dict(net_time="backwards"), "net_time"),
        (dict(net_time="reversed", learn_T=True), "net_time 'reversed'"),
    ],
)
def test_config_mistakes_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CNFConfig(**kwargs).validate()


def test_validation_cadence_and_reversed_net_time_round_trip(tmp_path):
    """Flow matching validates every FLOW_MATCHING_VAL_EVERY steps unless --val-every is given
    (a validation costs ~100 steps); a field trained with --net-time reversed reloads as the
    same ReversedTime field and scores the test NLL the run reported."""
    out = run(tmp_path, "--iterations", "4", "--net-time", "reversed", "--T", "0.7", "--test-max", "32")
    config = json.loads((out / "config.json").read_text())
    assert config["val_every"] == FLOW_MATCHING_VAL_EVERY and config["net_time"] == "reversed"
    flow, cfg = load_flow(out / "last.pt")
    assert isinstance(flow.net, ReversedTime) and flow.net.T == pytest.approx(0.7)
    s = json.loads((out / "summary.json").read_text())
    x = sample_toy(cfg.data, 32, seed=20_000 + cfg.seed)
    with torch.no_grad():
        again = evaluate_density(flow, x, "dopri5", Adaptive(1e-5, 1e-5))
    assert again["nll"] == pytest.approx(s["test_nll_dopri5"], abs=1e-6)
    given = json.loads((run(tmp_path / "b", "--iterations", "2", "--val-every", "7") / "config.json").read_text())
    assert given["val_every"] == 7
