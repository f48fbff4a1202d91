"""`odeflow train tabular`, then `odeflow evaluate` / `odeflow sample` on its run."""

import json

import numpy as np
import pytest

from odeflow.cli.main import main


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    pytest.importorskip("sklearn")  # breast_cancer ships with scikit-learn (the 'tabular' extra)
    out = tmp_path_factory.mktemp("tabular")
    assert (
        main(
            [
                "train",
                "tabular",
                "--data",
                "breast_cancer",
                "--iterations",
                "2",
                "--val-every",
                "1",
                "--batch",
                "40",
                "--multiplier",
                "1",
                "--val-max",
                "16",
                "--test-max",
                "16",
                "--dtype",
                "float64",
                "--quiet",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    return out


def test_train_writes_summary_and_takes_the_config_file(run):
    summary = json.loads((run / "summary.json").read_text())
    config = json.loads((run / "config.json").read_text())
    assert np.isfinite(summary["test_nll"]) and np.isfinite(summary["test_inverse_error"])
    assert summary["test_inverse_error_dopri5"] < 1e-5
    # configs/breast_cancer.toml gives T, the block count and Disc-Opt's rk4 h = 0.25; the options override
    assert (config["T"], config["blocks"], config["method"], config["step_size"]) == (1.0, 1, "rk4", 0.25)
    assert (config["multiplier"], config["batch"], config["mode"]) == (1, 40, "disc-opt")


def test_evaluate_and_rediscretize_a_tabular_run(run, capsys):
    assert main(["evaluate", str(run / "best.pt"), "--n", "16", "--json"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert (
        main(
            [
                "evaluate",
                str(run / "best.pt"),
                "--n",
                "16",
                "--json",
                "--method",
                "dopri5",
                "--rtol",
                "1e-7",
                "--atol",
                "1e-9",
            ]
        )
        == 0
    )
    fine = json.loads(capsys.readouterr().out)
    assert trained["nfe"] == 16 and trained["method"] == "rk4"  # rk4 h = 0.25 on T = 1
    assert fine["inverse_error"] < 1e-6 and abs(fine["nll"] - trained["nll"]) < 0.05


def test_sample_a_tabular_run(run, tmp_path):
    out = tmp_path / "s.npy"
    assert main(["sample", str(run / "last.pt"), "--n", "20", "--out", str(out)]) == 0
    x = np.load(out)
    assert x.shape == (20, 30) and np.isfinite(x).all()


def test_missing_data_file_names_the_relative_path(tmp_path, capsys):
    code = main(
        [
            "train",
            "tabular",
            "--data",
            "miniboone",
            "--data-dir",
            str(tmp_path),
            "--iterations",
            "1",
            "--quiet",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    assert code == 2
    assert "missing file miniboone/data.npy" in capsys.readouterr().err


def test_a_table_of_ones_own_trains_then_evaluates_and_samples(tmp_path, capsys, monkeypatch):
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3)) @ np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 2.0]]) + 5.0
    pd.DataFrame(x, columns=["a", "b", "c"]).to_csv(tmp_path / "mine.csv", index=False)
    monkeypatch.chdir(tmp_path)  # a relative path, resolved for later commands
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "tabular",
                "--data",
                "mine.csv",
                "--iterations",
                "2",
                "--val-every",
                "1",
                "--batch",
                "500",
                "--dtype",
                "float64",
                "--quiet",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dim"] == 3 and summary["test_rows"] == 12 and np.isfinite(summary["test_nll"])
    assert json.loads((out / "config.json").read_text())["batch"] == 96  # the whole training split
    monkeypatch.chdir(tmp_path.parent)
    capsys.readouterr()
    assert main(["evaluate", str(out / "best.pt"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 12 and abs(result["nll"] - summary["test_nll"]) < 1e-9
    assert main(["sample", str(out / "best.pt"), "--n", "5", "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (5, 3)


def test_a_table_with_a_text_column_is_refused_by_name(tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    pd.DataFrame({"x": np.arange(20.0), "name": ["p", "q"] * 10}).to_csv(tmp_path / "t.csv", index=False)
    assert main(["train", "tabular", "--data", str(tmp_path / "t.csv"), "--quiet", "--out", str(tmp_path / "r")]) == 2
    assert "not numeric: ['name']" in capsys.readouterr().err


def test_evaluate_a_tabular_run_with_either_trace(run, capsys):
    """Exact: the NLL of the stack's own evaluation (`evaluate_stack`) on the same rows and solver;
    Hutchinson with probes: within a few standard errors of it, with the trace recorded."""
    import torch

    from odeflow.data.tabular import load_tabular
    from odeflow.flows.stacked import evaluate_stack
    from odeflow.tasks.tabular import tabular_flow_from_state
    from odeflow.training.checkpoint import load_checkpoint

    assert main(["evaluate", str(run / "best.pt"), "--n", "16", "--json"]) == 0
    exact = json.loads(capsys.readouterr().out)
    flow, cfg = tabular_flow_from_state(load_checkpoint(run / "best.pt"))
    x = torch.tensor(load_tabular(cfg.data, cfg.data_dir, seed=cfg.seed).test[:16], dtype=torch.float64)
    first = flow.blocks[0]
    own = evaluate_stack(flow, x, first.method, first.step)
    assert exact["nll"] == pytest.approx(own["nll"], abs=1e-9) and exact["nfe"] == own["nfe"]
    torch.manual_seed(0)
    hutch_args = ["--eval-divergence", "hutchinson", "--eval-probes", "8", "--quiet"]
    assert main(["evaluate", str(run / "best.pt"), "--n", "16", "--json"] + hutch_args) == 0
    hutch = json.loads(capsys.readouterr().out)
    assert hutch["divergence"] == "hutchinson" and hutch["probes"] == 8 and hutch["nll_se"] > 0
    assert abs(hutch["nll"] - exact["nll"]) < 4 * hutch["nll_se"]
