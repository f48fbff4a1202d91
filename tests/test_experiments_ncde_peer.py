"""experiments/ncde_peer.py (the neural-CDE peer of docs/latent.md): paths with NaN where not
observed, and a short run on a labelled CSV."""

import importlib.util
from pathlib import Path

import pytest
import torch

pytest.importorskip("torchcde")

from odeflow.data.irregular import Series  # noqa: E402
from odeflow.tasks.sequence_classify import SequenceClassifyConfig  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    "ncde_peer", Path(__file__).resolve().parents[1] / "experiments" / "ncde_peer.py"
)
ncde_peer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ncde_peer)


def test_paths_put_values_on_the_grid_and_nan_elsewhere():
    grid = torch.tensor([0.0, 0.5, 1.0, 1.5])
    s = Series(torch.tensor([0.5, 1.5]), torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    x = ncde_peer.to_paths([s], grid)
    assert x.shape == (1, 4, 3) and torch.equal(x[0, :, 0], grid)
    assert torch.isnan(x[0, 0, 1:]).all() and torch.isnan(x[0, 2, 1:]).all() and torch.isnan(x[0, 1, 2])
    assert x[0, 1, 1] == 1.0 and x[0, 3, 1:].tolist() == [3.0, 4.0]


def test_short_run(tmp_path):
    rows = ["series,time,variable,value,label"]
    g = torch.Generator().manual_seed(0)
    for i in range(24):
        for t in range(6):
            rows.append(f"s{i},{t},x,{(1 if i % 2 else -1) + 0.1 * float(torch.randn(1, generator=g)):.3f},c{i % 2}")
    path = tmp_path / "s.csv"
    path.write_text("\n".join(rows) + "\n")
    r = ncde_peer.train_ncde(
        SequenceClassifyConfig(model="ncde", data=str(path), iterations=30, batch=8, drop=0.3, seed=0),
        hidden=8,
        width=8,
    )
    assert r["test_accuracy"] >= 0.8 and r["seconds_per_epoch"] > 0 and r["parameters"] > 0
