"""`odeflow sample` of a run on the user's own table writes the table's units and column names."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from odeflow.cli.main import main
from odeflow.data.user_table import load_user_table
from odeflow.tasks.tabular import TabularTask, build_tabular_flow
from odeflow.tasks.tabular_config import TabularConfig
from odeflow.training.checkpoint import save_checkpoint


@pytest.mark.parametrize("seed", range(3))
def test_user_table_keeps_names_and_standardization(tmp_path, seed):
    rng = np.random.default_rng(seed)
    names = ["height_cm", "income $", "rooms"]
    values = rng.normal([170, 5e4, 3], [10, 2e4, 1], size=(50, 3))
    pd.DataFrame(values, columns=names).to_csv(tmp_path / "t.csv", index=False)
    data = load_user_table(tmp_path / "t.csv", seed=seed)
    assert list(data.columns) == names
    back = np.concatenate([data.mean + data.std * s for s in (data.train, data.val, data.test)])
    np.testing.assert_allclose(np.sort(back, axis=0), np.sort(values, axis=0), rtol=1e-12)


@pytest.mark.parametrize("seed", range(2))
def test_samples_come_back_in_the_tables_units(tmp_path, seed):
    rng = np.random.default_rng(seed)
    names = ["depth_m", "salinity"]
    values = rng.normal([2000.0, 35.0], [300.0, 0.5], size=(40, 2))
    pd.DataFrame(values, columns=names).to_csv(tmp_path / "sea.csv", index=False)
    cfg = TabularConfig(data=str(tmp_path / "sea.csv"), dtype="float64", seed=seed)
    task = TabularTask(cfg, load_user_table(tmp_path / "sea.csv", seed=seed))
    task.val_rows = None
    flow = build_tabular_flow(cfg, 2)
    state = dict(kind="tabular", config=dataclasses.asdict(cfg), model=flow.state_dict(), task=task.state_dict())
    save_checkpoint(state, tmp_path / "best.pt")
    assert (
        main(["sample", str(tmp_path / "best.pt"), "--n", "64", "--seed", "3", "--out", str(tmp_path / "s.csv")]) == 0
    )
    samples = pd.read_csv(tmp_path / "s.csv")
    assert list(samples.columns) == names
    state["task"] = dict(state["task"], units={})  # the same flow, in the model's coordinates
    save_checkpoint(state, tmp_path / "raw.pt")
    assert main(["sample", str(tmp_path / "raw.pt"), "--n", "64", "--seed", "3", "--out", str(tmp_path / "r.csv")]) == 0
    raw = pd.read_csv(tmp_path / "r.csv").to_numpy()
    data = load_user_table(tmp_path / "sea.csv", seed=seed)
    np.testing.assert_allclose(samples.to_numpy(), data.mean + data.std * raw, rtol=1e-10)
