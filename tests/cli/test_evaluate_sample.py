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


def test_evaluate_hutchinson_with_probes_agrees_with_the_exact_trace(checkpoint, capsys):
    """The same rows and solver: the Hutchinson estimate (unbiased) lies within a few standard
    errors of the exact-trace NLL, and both record trace, probes and solver beside the NLL."""
    common = ["evaluate", str(checkpoint), "--n", "300", "--json", "--method", "dopri5", "--rtol", "1e-6"]
    assert main(common + ["--atol", "1e-6"]) == 0
    exact = json.loads(capsys.readouterr().out)
    torch.manual_seed(0)
    assert main(common + ["--atol", "1e-6", "--eval-divergence", "hutchinson", "--eval-probes", "16"]) == 0
    printed = capsys.readouterr()
    hutch = json.loads(printed.out)
    assert (exact["divergence"], exact["probes"], hutch["divergence"], hutch["probes"]) == (
        "exact",
        1,
        "hutchinson",
        16,
    )
    assert exact["solver"] == hutch["solver"] == "dopri5 rtol=1e-06 atol=1e-06"
    assert hutch["nll_se"] > 0 and abs(hutch["nll"] - exact["nll"]) < 4 * hutch["nll_se"]
    assert hutch["nll"] != exact["nll"]  # an estimate, not the exact trace again
    assert "s per 1,000 rows" in printed.err  # the time per 1,000 rows is announced before the rest


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--eval-probes", "4"], "add --eval-divergence hutchinson"),
        (["--eval-divergence", "hutchinson", "--eval-probes", "0"], "--eval-probes must be >= 1"),
    ],
)
def test_evaluate_option_mistakes_are_named(checkpoint, capsys, extra, message):
    assert main(["evaluate", str(checkpoint), "--n", "8"] + extra) == 2
    assert message in capsys.readouterr().err


def test_eval_options_are_refused_for_runs_without_a_density():
    import argparse

    from odeflow.cli.evaluate import check_eval_options

    args = argparse.Namespace(eval_divergence="hutchinson", eval_probes=2)
    with pytest.raises(ValueError, match="apply to cnf, tabular, image runs"):
        check_eval_options(args, "classify")
    check_eval_options(args, "tabular")  # accepted
