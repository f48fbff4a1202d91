"""Task `tabular` on the engine: config files, a tiny training run in both gradient modes,
the Table-5 summary keys, multilevel stages and checkpoint reloading."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import tomllib
import torch

from odeflow.data.tabular import LOADERS, TabularData
from odeflow.solvers.stepping import FixedStep
from odeflow.tasks.tabular import (
    MODES,
    TabularConfig,
    flatten_config,
    load_tabular_flow,
    read_tabular_config,
    train_tabular,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _tiny_data(dim: int = 3) -> TabularData:
    rng = np.random.RandomState(0)
    x = rng.randn(240, dim) @ np.diag(np.linspace(0.5, 1.5, dim))
    return TabularData("tiny", x[:160], x[160:200], x[200:])


def _cfg(**over) -> TabularConfig:
    base = dict(
        data="digits",
        iterations=4,
        val_every=2,
        batch=40,
        blocks=1,
        layers=1,
        multiplier=2,
        T=0.5,
        method="rk4",
        step_size=0.25,
        fine_factor=2,
        dtype="float64",
        checkpoint_every=100,
    )
    base.update(over)
    return TabularConfig(**base)


@pytest.mark.parametrize("name", sorted(p.stem for p in CONFIGS.glob("*.toml") if p.stem in LOADERS))
@pytest.mark.parametrize("mode", MODES)
def test_every_shipped_config_gives_a_valid_config(name, mode):
    cfg = read_tabular_config(CONFIGS / f"{name}.toml", mode)
    assert cfg.data == name and cfg.mode == mode
    if mode == "disc-opt":
        assert cfg.method == "rk4" and cfg.step_size > 0
    else:
        assert (cfg.method, cfg.step_size, cfg.rtol, cfg.atol) == ("dopri5", None, 1e-6, 1e-8)
    raw = tomllib.loads((CONFIGS / f"{name}.toml").read_text())
    assert cfg.batch == raw[mode]["batch"] and cfg.multiplier == raw["model"]["multiplier"]


def test_flatten_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown \\[model\\] key 'width'"):
        flatten_config({"model": {"width": 2}}, "disc-opt")
    with pytest.raises(ValueError, match="unknown keys \\['colour'\\]"):
        flatten_config({"colour": 1}, "disc-opt")
    with pytest.raises(ValueError, match="unknown mode 'fast'"):
        flatten_config({}, "fast")


@pytest.mark.parametrize(
    "mode, solver, fine_nfe",
    [
        ("disc-opt", dict(method="rk4", step_size=0.25), 16),  # rk4 h = 0.25 / 2 on T = 0.5
        ("opt-disc", dict(method="dopri5", step_size=None, rtol=1e-4, atol=1e-6), 40),
    ],
)  # adaptive: rk4 h = 0.05
def test_training_run_writes_the_table5_summary(tmp_path, mode, solver, fine_nfe):
    summary = train_tabular(_cfg(mode=mode, **solver), tmp_path, progress=False, data=_tiny_data())
    saved = json.loads((tmp_path / "summary.json").read_text())
    for suffix in ("", "_rk4_fine", "_dopri5"):
        for metric in ("test_nll", "test_inverse_error", "test_nfe"):
            assert np.isfinite(saved[metric + suffix])
    assert saved["test_nfe_rk4_fine"] == fine_nfe
    assert saved["test_inverse_error_dopri5"] < 1e-5
    assert summary["tested_model"] == "best.pt" and (tmp_path / "loss_vs_time.png").is_file()
    assert abs(saved["test_nll_dopri5"] - saved["test_nll_rk4_fine"]) < 1e-2


def test_multilevel_schedule_switches_the_solver(tmp_path):
    schedule = [
        dict(until=2, method="rk4", step_size=0.5, lr=1e-3),
        dict(until=4, method="rk4", step_size=0.25, lr=5e-4),
    ]
    train_tabular(_cfg(schedule=schedule), tmp_path, progress=False, data=_tiny_data())
    flow, cfg = load_tabular_flow(tmp_path / "last.pt")
    with open(tmp_path / "metrics.csv") as fh:
        nfe = [float(r["nfe_forward"]) for r in csv.DictReader(fh)]
    assert flow.blocks[0].step == FixedStep(0.25) and cfg.step_size == 0.25
    assert nfe == [4.0, 4.0, 8.0, 8.0]  # T = 0.5: 1 step then 2 steps of rk4


def test_loaded_flow_reproduces_log_prob(tmp_path):
    train_tabular(_cfg(iterations=2), tmp_path, progress=False, data=_tiny_data())
    a, _ = load_tabular_flow(tmp_path / "best.pt")
    b, _ = load_tabular_flow(tmp_path / "best.pt")
    x = torch.tensor(_tiny_data().test[:8])
    with torch.no_grad():
        assert torch.equal(a.log_prob(x), b.log_prob(x))


def test_batch_larger_than_the_training_set_uses_the_whole_set(tmp_path):
    with pytest.warns(UserWarning, match="batch 500 is larger than the training set \\(160 rows"):
        summary = train_tabular(_cfg(batch=500, iterations=2), tmp_path, progress=False, data=_tiny_data())
    assert json.loads((tmp_path / "config.json").read_text())["batch"] == 160
    assert np.isfinite(summary["test_nll"])


@pytest.mark.parametrize("plan", ["checkpointed", "adjoint"])
def test_memory_plan_is_reported_and_checkpointing_trains_like_plain(tmp_path, plan):
    plain = train_tabular(_cfg(memory_plan="plain"), tmp_path / "plain", progress=False, data=_tiny_data())
    other = train_tabular(_cfg(memory_plan=plan), tmp_path / plan, progress=False, data=_tiny_data())
    assert plain["memory"]["strategy"] == "plain" and other["memory"]["strategy"] == plan
    assert other["peak_memory_mb"] > 0 and other["memory"]["eval_chunk"] >= 1
    if plan == "checkpointed":  # the same discrete gradient: the same model, to rounding
        assert abs(other["test_nll"] - plain["test_nll"]) < 1e-9
    else:  # the adjoint's gradient differs slightly from the discrete one
        assert abs(other["test_nll"] - plain["test_nll"]) < 0.05


def test_validation_rows_default_to_a_share_of_training_time(tmp_path):
    summary = train_tabular(_cfg(val_share=1e-9, val_min=1, eval_chunk=10), tmp_path, progress=False, data=_tiny_data())
    assert summary["val_rows"] == 10  # a tiny share, no floor: only the first (timed) rows, one chunk
    timed = train_tabular(_cfg(val_share=1e-9, val_min=1), tmp_path / "timed", progress=False, data=_tiny_data())
    assert timed["val_rows"] == 32  # TIMED_ROWS of the 40
    generous = train_tabular(
        _cfg(val_share=1.0, val_min=1, eval_chunk=10), tmp_path / "all", progress=False, data=_tiny_data()
    )
    assert generous["val_rows"] > 10
    few = train_tabular(_cfg(val_max=7), tmp_path / "few", progress=False, data=_tiny_data())
    assert few["val_rows"] == 7 and few["test_rows"] == 40


@pytest.mark.parametrize("n_val, val_min, expected", [(40, 1000, 40), (300, 120, 120), (300, 1000, 300)])
def test_automatic_validation_rows_have_a_floor(tmp_path, n_val, val_min, expected):
    """However short the training so far, best.pt is chosen on min(val_min, all) validation rows
    (32 of digits' 161 rows before the floor existed)."""
    rng = np.random.RandomState(n_val)
    x = rng.randn(160 + n_val + 20, 2)
    data = TabularData("tiny", x[:160], x[160 : 160 + n_val], x[160 + n_val :])
    summary = train_tabular(_cfg(val_share=1e-9, val_min=val_min, iterations=2), tmp_path, progress=False, data=data)
    assert summary["val_rows"] == expected


def test_val_min_must_be_positive():
    with pytest.raises(ValueError, match="val_min must be >= 1"):
        _cfg(val_min=0).validate()
