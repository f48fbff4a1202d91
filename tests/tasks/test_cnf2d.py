import csv
import json

import pytest

from odeflow.cli.main import main
from odeflow.training.checkpoint import load_checkpoint


def test_train_cnf_writes_run_folder(tmp_path):
    out = tmp_path / "cnf"
    code = main(
        [
            "train",
            "cnf",
            "--iterations",
            "12",
            "--val-every",
            "6",
            "--hidden",
            "16",
            "16",
            "--batch",
            "128",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    for name in (
        "config.json",
        "metrics.csv",
        "best.pt",
        "last.pt",
        "summary.json",
        "density.png",
        "forward_inverse.png",
    ):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert len(rows) == 12 and rows[5]["val_nll"] != "" and rows[0]["val_nll"] == ""
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trained_solver"]["nfe"] == 8  # the default stages: 2 rk4 steps before iteration 50
    assert summary["rediscretized_dopri5"]["inverse_error"] < 1e-3
    assert load_checkpoint(out / "best.pt")["kind"] == "cnf"


@pytest.mark.parametrize(
    "flag,value,nfe", [("--step-size", "0.05", 40), ("--lr", "1e-3", 16), ("--method", "euler", 4)]
)
def test_own_solver_or_rate_replaces_the_default_stages(tmp_path, flag, value, nfe):
    out = tmp_path / "cnf"
    assert (
        main(
            [
                "train",
                "cnf",
                "--iterations",
                "2",
                "--hidden",
                "8",
                "--batch",
                "32",
                flag,
                value,
                "--quiet",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    config = json.loads((out / "config.json").read_text())
    assert config["schedule"] is None
    assert json.loads((out / "summary.json").read_text())["trained_solver"]["nfe"] == nfe


def test_train_cnf_unknown_dataset(tmp_path, capsys):
    assert main(["train", "cnf", "--data", "gaussians8", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "valid: 2spirals, 8gaussians" in capsys.readouterr().err


def test_multilevel_run_switches_grid_and_learning_rate_and_keeps_training(tmp_path):
    out = tmp_path / "ml"
    assert (
        main(
            [
                "train",
                "cnf",
                "--iterations",
                "12",
                "--val-every",
                "6",
                "--hidden",
                "16",
                "16",
                "--batch",
                "64",
                "--schedule",
                "until=6 method=rk4 step=0.25 lr=1e-2; until=12 method=rk4 step=0.1 lr=5e-3",
                "--quiet",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [int(r["nfe_forward"]) for r in rows] == [8] * 6 + [20] * 6
    assert [int(r["stage"]) for r in rows] == [0] * 6 + [1] * 6
    assert all(float(r["loss"]) == float(r["loss"]) for r in rows)  # finite, kept training
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    config = json.loads((out / "config.json").read_text())
    assert config["schedule"][1]["lr"] == 5e-3


def test_combined_recipe_from_a_toml_config(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        "iterations = 8\nbatch = 64\nhidden = [16, 16]\nval_every = 4\nkinetic = 0.01\njacobian = 0.01\n"
        "zero_init = true\nlearn_T = true\nstep_size = 0.25\n"
        '[[schedule]]\nuntil = 4\nmethod = "rk4"\nstep = 0.5\n'
        '[[schedule]]\nuntil = 8\nmethod = "rk4"\nstep = 0.25\nlr = 5e-4\n'
    )
    out = tmp_path / "all"
    assert main(["train", "cnf", "--config", str(cfg), "--T-alpha", "0.2", "--quiet", "--out", str(out)]) == 0
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    Ts = [float(r["T"]) for r in rows]
    assert len(set(Ts)) == len(Ts) and all(0.1 <= T <= 0.9 for T in Ts)  # T moves every iteration, clipped
    assert float(rows[0]["kinetic"]) == 0.0 and float(rows[-1]["kinetic"]) > 0  # f = 0 at the start
    assert json.loads((out / "config.json").read_text())["T_alpha"] == 0.2
    assert json.loads((out / "summary.json").read_text())["T"] == pytest.approx(Ts[-1])


def test_bad_config_file_is_explained(tmp_path, capsys):
    cfg = tmp_path / "run.json"
    cfg.write_text('{"iterations": 3, "kinetik": 0.1}')
    assert main(["train", "cnf", "--config", str(cfg), "--quiet", "--out", str(tmp_path / "x")]) == 2
    assert "unknown keys ['kinetik']" in capsys.readouterr().err


def test_compile_option_reaches_the_flow(tmp_path, monkeypatch):
    """`--compile` (= on) sets CNFConfig.compile and build_flow gives a CNF that solves with
    compile=True; the default 'auto' and 'off' build an eager CNF (training itself is covered by
    tests/flows/test_functional_divergence.py)."""
    import odeflow.tasks.cnf2d as cnf2d

    seen = {}

    def fake_train(cfg, out, **kwargs):
        seen["cfg"] = cfg
        solver = dict(nll=0.0, inverse_error=0.0, nfe=0)
        return dict(iterations=0, ms_per_iter=0.0, T=cfg.T, trained_solver=solver, rediscretized_dopri5=solver)

    monkeypatch.setattr(cnf2d, "train_cnf", fake_train)
    assert main(["train", "cnf", "--compile", "--quiet", "--out", str(tmp_path / "r")]) == 0
    assert seen["cfg"].compile == "on"
    assert cnf2d.build_flow(seen["cfg"]).compile is True
    assert main(["train", "cnf", "--quiet", "--out", str(tmp_path / "s")]) == 0
    assert seen["cfg"].compile == "auto" and cnf2d.build_flow(seen["cfg"]).compile is False
    assert main(["train", "cnf", "--compile", "off", "--quiet", "--out", str(tmp_path / "t")]) == 0
    assert seen["cfg"].compile == "off" and cnf2d.build_flow(seen["cfg"]).compile is False


def test_memory_budget_checkpoints_and_the_run_matches_plain(tmp_path):
    common = [
        "train",
        "cnf",
        "--iterations",
        "3",
        "--val-every",
        "3",
        "--hidden",
        "16",
        "16",
        "--batch",
        "64",
        "--quiet",
    ]
    assert main(common + ["--memory-plan", "plain", "--out", str(tmp_path / "plain")]) == 0
    assert main(common + ["--memory-plan", "checkpointed", "--max-memory", "64", "--out", str(tmp_path / "ck")]) == 0
    plain = json.loads((tmp_path / "plain" / "summary.json").read_text())
    ck = json.loads((tmp_path / "ck" / "summary.json").read_text())
    assert plain["memory"]["strategy"] == "plain" and ck["memory"]["strategy"] == "checkpointed"
    assert ck["memory"]["budget_source"] == "--max-memory 64 GB" and ck["peak_memory_mb"] > 0
    assert abs(ck["test_nll"] - plain["test_nll"]) < 1e-5  # the same discrete gradient


def test_too_small_a_budget_names_the_batch_that_fits(tmp_path, capsys):
    assert (
        main(["train", "cnf", "--iterations", "1", "--max-memory", "0.01", "--quiet", "--out", str(tmp_path / "x")])
        == 2
    )
    err = capsys.readouterr().err
    # Which message depends on the memory this process holds already (the whole suite: ~1 GB):
    # a batch that fits ("use --batch N"), or not even one row ("raise --max-memory to ...").
    assert ("does not fit in the memory budget" in err and "--batch" in err) or (
        "too small for even one row" in err and "raise --max-memory to at least" in err
    )
