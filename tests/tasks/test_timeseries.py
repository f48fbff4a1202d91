import json
import math
import shutil

import pytest
import torch

from odeflow.cli.main import main
from odeflow.tasks.timeseries import TimeSeriesConfig, build_model, train_timeseries
from odeflow.training.checkpoint import load_checkpoint
from odeflow.training.run_folder import read_metrics


@pytest.mark.parametrize("mode,extra", [("disc-opt", {}), ("opt-disc", dict(rtol=1e-5, atol=1e-7))])
def test_short_run_decreases_loss(mode, extra):
    cfg = TimeSeriesConfig(mode=mode, iterations=25, check_at=[], snapshot_at=[], **extra)
    r = train_timeseries(cfg, None, progress=False)
    assert r.losses[-1] < 0.5 * r.losses[0]
    assert r.nfe_forward > 0
    assert (r.nfe_backward > 0) == (mode == "opt-disc")


def test_both_modes_start_from_identical_parameters():
    a = build_model(TimeSeriesConfig(mode="disc-opt", seed=3), 2)
    b = build_model(TimeSeriesConfig(mode="opt-disc", seed=3), 2)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    a_loss = train_timeseries(
        TimeSeriesConfig(mode="disc-opt", seed=3, iterations=1, check_at=[], snapshot_at=[]), None, progress=False
    ).losses[0]
    b_loss = train_timeseries(
        TimeSeriesConfig(mode="opt-disc", seed=3, iterations=1, check_at=[], snapshot_at=[]), None, progress=False
    ).losses[0]
    assert a_loss == pytest.approx(b_loss, rel=1e-3)  # same model, rk4 vs dopri5 prediction


def test_csv_with_irregular_times_trains(tmp_path):
    t = torch.tensor([0.0, 0.1, 0.25, 0.3, 0.55, 0.8, 1.0])
    rows = "\n".join(f"{ti:.3f},{math.cos(2 * ti):.6f},{math.sin(2 * ti):.6f}" for ti in t.tolist())
    path = tmp_path / "series.csv"
    path.write_text("t,x,y\n" + rows + "\n")
    cfg = TimeSeriesConfig(data=str(path), transform="identity", iterations=20, lr=0.05, check_at=[], snapshot_at=[])
    r = train_timeseries(cfg, tmp_path / "run", progress=False)
    assert r.losses[-1] < r.losses[0]


def test_run_folder_contents(tmp_path):
    out = tmp_path / "run"
    code = main(["train", "timeseries", "--iterations", "26", "--check-at", "2", "--quiet", "--out", str(out)])
    assert code == 0
    for name in (
        "config.json",
        "metrics.csv",
        "last.pt",
        "summary.json",
        "loss.png",
        "fit_disc-opt.png",
        "derivative_check_disc-opt_it2.png",
        "extrapolation.png",
    ):
        assert (out / name).is_file(), name
    rows = read_metrics(out / "metrics.csv")
    assert len(rows) == 26 and set(rows[0]) == {"iteration", "loss", "wall_time", "nfe_forward", "nfe_backward"}
    checks = json.loads((out / "derivative_checks.json").read_text())
    assert checks["2"]["passed"]
    state = load_checkpoint(out / "last.pt")
    assert state["config"]["iterations"] == 26


def test_corrupt_checkpoint_is_reported(tmp_path):
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="corrupt"):
        load_checkpoint(bad)


def test_cli_reports_bad_csv(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("t,x\n0,1\n1,oops\n")
    assert (
        main(["train", "timeseries", "--data", str(path), "--iterations", "2", "--quiet", "--out", str(tmp_path / "r")])
        == 2
    )
    assert "is not a number" in capsys.readouterr().err


def test_compare_cli(tmp_path, capsys):
    out = tmp_path / "cmp"
    code = main(
        [
            "compare",
            "timeseries",
            "--iterations",
            "3",
            "--check-at",
            "--rtol",
            "1e-4",
            "--atol",
            "1e-6",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "| disc-opt |" in text and "| opt-disc |" in text and "ms/iter ratio" in text
    assert (out / "comparison.md").is_file() and (out / "loss_both_modes.png").is_file()


@pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None, reason="compile=True needs a C++ compiler"
)
def test_compiled_training_follows_the_eager_run():
    cfg = dict(mode="disc-opt", iterations=5, check_at=[], snapshot_at=[])
    eager = train_timeseries(TimeSeriesConfig(**cfg, compile="off"), None, progress=False)
    compiled = train_timeseries(TimeSeriesConfig(**cfg, compile=True), None, progress=False)
    assert compiled.losses == pytest.approx(eager.losses, rel=1e-9)
    assert compiled.nfe_forward == eager.nfe_forward


@pytest.mark.parametrize(
    "argv, want",
    [
        ([], "auto"),
        (["--compile"], "on"),
        (["--compile", "on"], "on"),
        (["--compile", "off"], "off"),
        (["--compile", "auto"], "auto"),
    ],
)
def test_compile_option_parsing(tmp_path, monkeypatch, argv, want):
    import odeflow.tasks.timeseries as ts

    seen = {}

    def fake_train(cfg, out, **kwargs):
        seen["cfg"] = cfg
        return ts.TrainResult([1.0], [0.1], 1.0, 1.0, None, None, {}, {}, 0.0, 0.0)

    monkeypatch.setattr(ts, "train_timeseries", fake_train)
    assert main(["train", "timeseries", *argv, "--quiet", "--out", str(tmp_path / "r")]) == 0
    assert seen["cfg"].compile == want
    kwargs = seen["cfg"].solver_kwargs()
    if want == "auto":  # auto knows how many solves the run makes
        assert kwargs["compile"].expected_calls == seen["cfg"].iterations
    else:
        assert kwargs["compile"] is (want == "on")


def test_compile_choice_is_recorded_and_checked(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(
            ["train", "timeseries", "--iterations", "2", "--check-at", "--compile", "off", "--quiet", "--out", str(out)]
        )
        == 0
    )
    assert json.loads((out / "config.json").read_text())["compile"] == "off"
    with pytest.raises(SystemExit):
        main(["train", "timeseries", "--compile", "maybe", "--quiet", "--out", str(tmp_path / "x")])
    assert "invalid choice: 'maybe'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="auto, on, off"):
        TimeSeriesConfig(compile="maybe").validate()
