"""random-cde through `odeflow train classify` and `odeflow evaluate`: a randomized family of
labelled long CSVs (three classes by frequency), the run folder (best.pt loads with
weights_only=True and holds no random weights), evaluate reproduces summary.json, a model at
chance says so, it is the default series model, and the settings that do not apply are refused
(the training options with random-cde, the reservoir's with a trained model)."""

import json
import math

import pytest
import torch

from odeflow.cli.main import main
from odeflow.tasks.sequence_classify import SequenceClassifyConfig, SequenceClassifyTask, train_sequence_classify


def _write_csv(path, seed, n_series=45, same=False):
    """Class c: a sine of frequency 2 + 3c at a random phase and level; each variable observed at
    its own 8-14 random times of a 0.05 grid (with `same`: every series alike, labels arbitrary)."""
    g = torch.Generator().manual_seed(seed)
    rows = ["series,time,variable,value,label"]
    for i in range(n_series):
        c = i % 3
        phase, level = float(torch.rand(1, generator=g)) * 6.28, float(torch.randn(1, generator=g)) * 0.3
        for var in ("u", "v"):
            n = int(torch.randint(8, 15, (1,), generator=g))
            for t in sorted(set(round(0.05 * int(k), 2) for k in torch.randint(0, 40, (n,), generator=g))):
                f = 0.0 if same else (2 + 3 * c) * t + phase + (0.5 if var == "v" else 0.0)
                rows.append(f"s{i},{t},{var},{level * (not same) + math.sin(f):.4f},{'abc'[c]}")
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("seed", range(2))
def test_cli_fit_and_evaluate_round_trip(tmp_path, capsys, seed):
    path, out = _write_csv(tmp_path / "s.csv", seed, n_series=60), tmp_path / "run"
    argv = ["train", "classify", "--data", str(path), "--model", "random-cde", "--reservoir", "48"]
    assert main([*argv, "--seed", str(seed), "--test-fraction", "0.3", "--out", str(out), "--quiet"]) == 0
    assert "test accuracy" in capsys.readouterr().out
    s = json.loads((out / "summary.json").read_text())
    assert s["stopped"] == "closed form" and s["iterations"] == 0 and s["units"] == 48
    assert s["n_test"] == 18 and sum(map(sum, s["test_confusion"])) == 18
    assert s["test_accuracy"] >= 0.6 and s["loo_accuracy"] >= 0.6 and "warning" not in s  # chance 1/3
    state = torch.load(out / "best.pt", weights_only=True)
    assert state["kind"] == "sequence-classify" and state["config"]["model"] == "random-cde"
    assert not any(k.startswith("field") for k in state["model"])  # regenerated from the seed
    assert float(state["model"]["alpha"]) == s["alpha"]
    assert s["path_weight"] in (0.0, 0.3, 1.0, 3.0, "path only") and s["path_features"] == 6 * 16 * 2
    assert state["model"]["path.thresholds"].shape == (6, 16, 2)  # fitted on the training series, stored
    assert bool(state["model"]["path.thresholds"].diff(dim=1).ge(0).all())  # quantiles ascend
    assert main(["evaluate", str(out), "--json", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["accuracy"] == pytest.approx(s["test_accuracy"], abs=1e-6)  # evaluate's mean is float32
    assert result["loss"] == pytest.approx(s["test_loss"], rel=1e-12)
    assert result["confusion"] == s["test_confusion"]


def test_library_fit_is_deterministic_and_at_chance_says_so(tmp_path):
    path = _write_csv(tmp_path / "s.csv", 3, n_series=30)
    cfg = dict(model="random-cde", data=str(path), reservoir=16, windows=6)
    a = train_sequence_classify(SequenceClassifyConfig(**cfg), None)
    b = train_sequence_classify(SequenceClassifyConfig(**cfg), None)
    assert a["test_accuracy"] == b["test_accuracy"] and a["test_loss"] == b["test_loss"] and a["alpha"] == b["alpha"]
    same = _write_csv(tmp_path / "same.csv", 4, n_series=30, same=True)
    s = train_sequence_classify(SequenceClassifyConfig(**dict(cfg, data=str(same))), None)
    assert "random features do not separate the classes" in s["warning"]


def test_random_cde_is_the_default_series_model(tmp_path, capsys):
    """No --model on series data: the closed-form fit, with its own stop reason in summary.json."""
    path, out = _write_csv(tmp_path / "s.csv", 5, n_series=30), tmp_path / "run"
    argv = ["train", "classify", "--data", str(path), "--reservoir", "16", "--windows", "6", "--out", str(out)]
    assert main([*argv, "--quiet"]) == 0
    assert capsys.readouterr().out.startswith("random-cde on ")
    s = json.loads((out / "summary.json").read_text())
    assert s["model"] == "random-cde" and s["stopped"] == "closed form" and s["iterations"] == 0
    assert s["budget"].startswith("closed form") and s["units"] == 16
    assert json.loads((out / "config.json").read_text())["model"] == "random-cde"


@pytest.mark.parametrize(
    "argv,match",
    [
        (["--model", "random-cde", "--iterations", "10"], "not trained by iterations"),
        (["--model", "random-cde", "--epochs", "2"], "not trained by iterations"),
        (["--iterations", "10"], "random-cde (the default series model) is not trained by iterations"),
        (["--epochs", "3"], "pass --model ode-rnn"),
        (["--lr", "0.1"], "--lr does not apply to random-cde (the default series model"),
        (["--patience", "3", "--batch", "4"], "--batch, --patience do not apply to random-cde"),
        (["--hidden", "8"], "--hidden does not apply to random-cde"),
        (["--val-every", "5", "--time-budget", "60"], "--val-every, --time-budget do not apply"),
        (["--tensorboard"], "--tensorboard logs training curves; random-cde"),
        (["--model", "ode-rnn", "--windows", "8"], "windows applies to --model nrde or random-cde"),
        (["--model", "ode-rnn", "--reservoir", "8"], "--reservoir applies to --model random-cde only"),
        (["--model", "gru-d", "--shifts", "2"], "--shifts applies to --model random-cde only"),
    ],
)
def test_settings_that_do_not_apply(tmp_path, argv, match, capsys):
    path = _write_csv(tmp_path / "s.csv", 0, n_series=9)
    assert main(["train", "classify", "--data", str(path), *argv, "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert match in capsys.readouterr().err


def test_the_iteration_task_refuses_random_cde(tmp_path, capsys):
    with pytest.raises(ValueError, match="no iterations to train"):
        SequenceClassifyTask(SequenceClassifyConfig(model="random-cde"))
    with pytest.raises(ValueError, match="the default series model"):
        SequenceClassifyTask(SequenceClassifyConfig())
    path = _write_csv(tmp_path / "s.csv", 0, n_series=9)  # the task by its own name, no --model
    assert main(["train", "sequence-classify", "--data", str(path), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert "odeflow train classify --data" in capsys.readouterr().err
