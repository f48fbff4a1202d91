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


@pytest.mark.parametrize("model", ["latent-ode", "ode-rnn"])
def test_reconstructions_come_back_in_the_csv_units(model, tmp_path):
    """reconstructions.csv holds every observed value of the test series at its own time, under its
    variable's name and in the file's units (the model works on standardized values and scaled times)."""
    import csv
    import random

    rng = random.Random(3)
    truth = {}
    rows = ["series,time,variable,value"]
    for k in range(10):
        for i in range(8):
            t = 1000.0 + 37.5 * i + rng.random()  # far from the model's unit time range
            for var, scale in (("pressure", 1e5), ("temp", 300.0)):
                if rng.random() < 0.8:
                    v = scale * (1 + 0.1 * rng.random())
                    truth[(f"p{k}", t, var)] = v
                    rows.append(f"p{k},{t!r},{var},{v!r}")
    path = tmp_path / "mine.csv"
    path.write_text("\n".join(rows) + "\n")
    run = tmp_path / "run"
    args = ["train", "latent", "--model", model, "--data", str(path), "--iterations", "2", "--out", str(run)]
    assert main(args + ["--test-fraction", "0.3", *TINY[6:]]) == 0
    got = list(csv.DictReader((run / "reconstructions.csv").open()))
    test_series = {r["series"] for r in got}
    expected = {key for key in truth if key[0] in test_series}
    assert len(test_series) == 3 and len(got) == len(expected)
    for r in got:  # times within float32 rounding of the model's [0, 1] scale (points are ~37 apart)
        (key,) = [k for k in expected if k[::2] == (r["series"], r["variable"]) and abs(k[1] - float(r["time"])) < 1e-3]
        assert float(r["observed"]) == pytest.approx(truth[key], rel=1e-6)  # float32 inside the model
        assert r["role"] in ("input", "held_out", "other")
        scale = 1e5 if r["variable"] == "pressure" else 300.0
        assert 0.2 * scale < float(r["predicted"]) < 5 * scale  # a prediction near the data, in its units
