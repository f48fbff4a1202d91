"""`odeflow evaluate` and `odeflow sample` on a checkpoint written by `odeflow train cnf`."""

import json

import numpy as np
import pytest
import torch

from odeflow.cli.main import main
from odeflow.data import sample_toy
from odeflow.tasks.cnf2d import load_flow


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("cnf")
    assert (
        main(
            [
                "train",
                "cnf",
                "--iterations",
                "5",
                "--val-every",
                "5",
                "--hidden",
                "8",
                "8",
                "--batch",
                "64",
                "--step-size",
                "0.25",
                "--quiet",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    return out / "last.pt"


def test_loaded_flow_reproduces_log_prob(checkpoint):
    a, cfg = load_flow(checkpoint)
    b, _ = load_flow(checkpoint)
    x = sample_toy(cfg.data, 32, seed=1)
    with torch.no_grad():
        assert torch.equal(a.log_prob(x), b.log_prob(x))


def test_evaluate_with_trained_and_rediscretized_solver(checkpoint, capsys):
    assert main(["evaluate", str(checkpoint), "--n", "256", "--json"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert (
        main(
            [
                "evaluate",
                str(checkpoint),
                "--n",
                "256",
                "--json",
                "--method",
                "dopri5",
                "--rtol",
                "1e-7",
                "--atol",
                "1e-7",
            ]
        )
        == 0
    )
    fine = json.loads(capsys.readouterr().out)
    assert trained["nfe"] == 8 and trained["method"] == "rk4"  # rk4, h = 0.25 on T = 0.5
    assert fine["nfe"] > 8 and fine["inverse_error"] < 1e-5
    assert np.isfinite(fine["nll"]) and abs(fine["nll"] - trained["nll"]) < 0.5


@pytest.mark.parametrize("suffix, folder", [(".csv", False), (".npy", True)])
def test_sample_writes_finite_samples_and_plot(checkpoint, tmp_path, suffix, folder):
    out = tmp_path / f"s{suffix}"
    given = checkpoint.parent if folder else checkpoint  # a run folder samples from its best.pt / last.pt
    assert main(["sample", str(given), "--n", "50", "--out", str(out), "--plot", str(tmp_path / "s.png")]) == 0
    x = np.load(out) if suffix == ".npy" else np.loadtxt(out, delimiter=",", skiprows=1)
    assert x.shape == (50, 2) and np.isfinite(x).all() and (tmp_path / "s.png").is_file()


def test_corrupt_checkpoint_gives_clear_error(tmp_path, capsys):
    bad = tmp_path / "last.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["evaluate", str(bad)]) == 2
    assert "corrupt or not an odeflow checkpoint" in capsys.readouterr().err


def test_unknown_method_and_missing_file(checkpoint, tmp_path, capsys):
    assert main(["evaluate", str(checkpoint), "--method", "rk5"]) == 2
    assert "unknown method 'rk5'" in capsys.readouterr().err
    assert main(["sample", str(tmp_path / "none.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err
