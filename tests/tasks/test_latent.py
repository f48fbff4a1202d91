"""`odeflow train latent` on the engine: run folder, summary keys, figures, resume, errors."""

import json

import pytest

from odeflow.cli.main import main

TINY = [
    "--n-train",
    "12",
    "--n-test",
    "3",
    "--n-points",
    "20",
    "--val-size",
    "3",
    "--batch",
    "4",
    "--hidden",
    "5",
    "--latent-dim",
    "2",
    "--field-hidden",
    "6",
    "--step-size",
    "0.25",
    "--eval-samples",
    "2",
    "--samples",
    "2",
    "--quiet",
]


@pytest.mark.parametrize("model,extra", [("latent-ode", ["--poisson"]), ("rnn-dt", [])])
def test_train_latent_writes_run_folder(model, extra, tmp_path):
    run = tmp_path / "run"
    code = main(
        [
            "train",
            "latent",
            "--model",
            model,
            "--data",
            "periodic",
            "--task",
            "extrapolation",
            "--fraction",
            "0.5",
            "--iterations",
            "2",
            "--val-every",
            "1",
            "--out",
            str(run),
            *TINY,
            *extra,
        ]
    )
    assert code == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["iterations"] == 2 and summary["test_mse"] > 0 and summary["model"] == model
    assert ("test_elbo" in summary) == (model == "latent-ode")
    names = {p.name for p in run.iterdir()}
    assert {"config.json", "metrics.csv", "last.pt", "best.pt", "predictions.png"} <= names
    assert ({"latents.png", "intensity.png"} <= names) == (model == "latent-ode")
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert "mse" in header and "val_mse" in header


def test_resume_continues_a_latent_run(tmp_path):
    run = tmp_path / "run"
    args = ["train", "latent", "--model", "ode-rnn", "--val-every", "2", *TINY]
    assert main([*args, "--iterations", "2", "--out", str(run)]) == 0
    assert main(["train", "latent", "--resume", str(run), "--iterations", "3", "--quiet"]) == 0
    assert json.loads((run / "summary.json").read_text())["iterations"] == 3


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--data", "mnist"], "unknown data 'mnist'"),
        (["--model", "rnn-dt", "--poisson"], "--poisson applies"),
        (["--data", "physionet", "--data-dir", "/nonexistent/pn"], "physionet.org"),
    ],
)
def test_bad_settings_are_explained(flags, message, tmp_path, capsys):
    code = main(["train", "latent", "--iterations", "1", "--out", str(tmp_path / "r"), *TINY, *flags])
    assert code == 2
    assert message in capsys.readouterr().err
