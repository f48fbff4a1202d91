import json

import pytest

from odeflow.cli.main import main
from odeflow.tasks.function_encoder import FunctionEncoderConfig, train_function_encoder
from odeflow.tasks.hamiltonian import HamiltonianConfig, train_hamiltonian


def val_losses(folder, key="val_loss"):
    import csv

    with (folder / "metrics.csv").open() as fh:
        return [float(r[key]) for r in csv.DictReader(fh) if r.get(key)]


def test_hamiltonian_run_folder_and_learning(tmp_path):
    cfg = HamiltonianConfig(
        model="hnn-separable",
        hidden=[16],
        n_train=6,
        n_test=3,
        points=21,
        iterations=60,
        batch=40,
        val_every=20,
        rollout_factor=5,
    )
    s = train_hamiltonian(cfg, tmp_path, progress=False)
    for name in (
        "config.json",
        "metrics.csv",
        "summary.json",
        "best.pt",
        "last.pt",
        "energy.png",
        "phase_portrait.png",
    ):
        assert (tmp_path / name).is_file(), name
    v = val_losses(tmp_path)
    assert v[-1] < 0.5 * v[0]
    assert s["test_integrator"] == "leapfrog" and s["test_drift_end"] >= 0


def test_function_encoder_run_folder_and_zero_shot_metrics(tmp_path):
    cfg = FunctionEncoderConfig(
        n_systems=4,
        trajectories=4,
        points=11,
        n_basis=3,
        hidden=[8],
        iterations=30,
        batch=2,
        val_every=10,
        test_parameters=[[1.0], [3.0]],
        demos=2,
        eval_trajectories=2,
    )
    s = train_function_encoder(cfg, tmp_path, progress=False)
    for name in ("summary.json", "alphas.png", "phase_portraits.png"):
        assert (tmp_path / name).is_file(), name
    assert set(s["test_alphas"]) == {"1", "3"} and len(s["test_alphas"]["1"]) == 3
    assert s["test_mse_least_squares"] > 0 and "test_mse_inner_3" in s
    v = val_losses(tmp_path)
    assert v[-1] < v[0]


def test_sde_cli(tmp_path, capsys):
    pytest.importorskip("torchsde")
    out = tmp_path / "sde"
    assert (
        main(
            [
                "train",
                "sde",
                "--iterations",
                "20",
                "--batch",
                "16",
                "--n-paths",
                "32",
                "--points",
                "6",
                "--hidden",
                "8",
                "--val-every",
                "10",
                "--dt",
                "0.1",
                "--quiet",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    s = json.loads((out / "summary.json").read_text())
    assert "test_std_error_vs_exact" in s and (out / "bands.png").is_file()
    assert "max |std error|" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "hamiltonian", "--model", "node", "--integrator", "leapfrog"],
        ["train", "function-encoder", "--test-parameters", "[[1.0, 2.0]]"],
    ],
)
def test_bad_settings_exit_2(argv, tmp_path, capsys):
    assert main(argv + ["--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "error" in capsys.readouterr().err


def test_hamiltonian_cli_and_resume(tmp_path, capsys):
    out = tmp_path / "h"
    base = [
        "train",
        "hamiltonian",
        "--model",
        "hnn",
        "--hidden",
        "8",
        "--n-train",
        "3",
        "--n-test",
        "2",
        "--points",
        "11",
        "--batch",
        "30",
        "--val-every",
        "5",
        "--rollout-factor",
        "2",
        "--quiet",
        "--out",
        str(out),
    ]
    assert main(base + ["--iterations", "10"]) == 0
    assert "energy drift" in capsys.readouterr().out
    assert main(["train", "hamiltonian", "--resume", str(out), "--iterations", "15", "--quiet"]) == 0
    assert json.loads((out / "summary.json").read_text())["iterations"] == 15
