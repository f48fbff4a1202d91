"""Sequence classification: a long CSV with labels (learnable, randomized family), a short run
on BasicMotions through the CLI, and the errors of bad input."""

import csv
import json
import math

import pytest
import torch

from odeflow.cli.main import main
from odeflow.tasks.sequence_classify import SequenceClassifyConfig, load_sequence_data, train_sequence_classify


def _write_csv(path, seed, n_series=60):
    """Two classes: level around +1 or -1 with a random oscillation on top; irregular times
    (on a 0.05 grid), the two variables observed at partly different times."""
    g = torch.Generator().manual_seed(seed)
    rows = ["series,time,variable,value,label"]
    for i in range(n_series):
        cls = i % 2
        level = (1.0 if cls == 0 else -1.0) * float(0.7 + 0.6 * torch.rand(1, generator=g))
        freq, phase = float(1 + 3 * torch.rand(1, generator=g)), float(torch.rand(1, generator=g)) * 2 * math.pi
        for var in ("u", "v"):
            n = int(torch.randint(5, 12, (1,), generator=g))
            times = sorted(set(round(0.05 * int(t), 2) for t in torch.randint(0, 40, (n,), generator=g)))
            for t in times:
                val = level + 0.5 * (math.sin(freq * t + phase) if var == "u" else math.cos(freq * t + phase))
                rows.append(
                    f"s{i},{t},{var},{val + 0.05 * float(torch.randn(1, generator=g)):.4f},"
                    f"{'up' if cls == 0 else 'down'}"
                )
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize(
    "model,seed",
    [("gru-dt", 0), ("gru-dt", 1), ("gru-d", 2), ("ode-rnn", 3), ("latent-ode", 4), ("ncde", 5), ("nrde", 6)],
)
def test_csv_models_learn_a_separable_family(tmp_path, model, seed):
    path = _write_csv(tmp_path / "s.csv", seed)
    cfg = SequenceClassifyConfig(
        model=model,
        data=str(path),
        iterations=40,
        batch=8,
        val_every=20,
        seed=seed,
        test_fraction=0.25,
        hidden=16,
        field_hidden=16,
        latent_dim=4,
    )
    s = train_sequence_classify(cfg, None, progress=False)
    assert s["n_test"] == 15 and s["classes"] == ["down", "up"]
    assert s["test_accuracy"] >= 0.8


def test_csv_data_split_drop_and_normalisation(tmp_path):
    path = _write_csv(tmp_path / "s.csv", 3)
    full = load_sequence_data(SequenceClassifyConfig(data=str(path)))
    half = load_sequence_data(SequenceClassifyConfig(data=str(path), drop=0.5))
    assert len(full.train) + len(full.val) + len(full.test) == 60
    assert [s.name for s in full.test] == [s.name for s in half.test]
    for a, b in zip(full.train + full.test, half.train + half.test):
        n = a.times.shape[0]
        assert b.times.shape[0] == n - min(n - 1, round(0.5 * n))
    vals = torch.cat([s.values[s.mask > 0] for s in full.train])
    assert abs(float(vals.mean())) < 1e-4 and abs(float(vals.std()) - 1) < 0.05
    assert max(float(s.times[-1]) for s in full.train) <= 1.0 + 1e-6


@pytest.mark.parametrize(
    "model,extra",
    [
        ("ode-rnn", []),
        ("latent-ode", []),
        ("gru-d", []),
        ("ncde", ["--mode", "opt-disc", "--spline", "natural"]),
        ("nrde", ["--mode", "opt-disc", "--windows", "7"]),
    ],
)
def test_basic_motions_cli_short_run(tmp_path, capsys, model, extra):
    pytest.importorskip("sktime")
    out = tmp_path / model
    code = main(
        [
            "train",
            "classify",
            "--data",
            "basic-motions",
            "--model",
            model,
            "--drop",
            "0.5",
            "--iterations",
            "3",
            "--batch",
            "8",
            "--val-every",
            "3",
            "--hidden",
            "8",
            "--field-hidden",
            "8",
            "--latent-dim",
            "4",
            "--out",
            str(out),
            "--quiet",
            *extra,
        ]
    )
    assert code == 0
    assert "test accuracy" in capsys.readouterr().out
    s = json.loads((out / "summary.json").read_text())
    assert s["n_test"] == 40 and s["iterations"] == 3 and 0 <= s["test_accuracy"] <= 1
    assert sum(map(sum, s["test_confusion"])) == 40 and s["seconds_per_epoch"] > 0


@pytest.mark.parametrize(
    "argv,match",
    [
        (["--data", "digits", "--model", "gru-d"], "classifies irregular series"),
        (["--data", "basic-motions", "--model", "odenet"], "classifies vectors and images"),
        (["--data", "digits", "--drop", "0.3"], "apply to series data only"),
        (["--data", "basic-motions", "--channels", "4"], "do not apply to series models"),
        (["--data", "basic-motions", "--drop", "1.0"], "drop must be in"),
        (["--data", "basic-motions", "--hidden", "4", "4"], "one width"),
    ],
)
def test_cli_errors(argv, match, capsys):
    code = main(["train", "classify", *argv, "--iterations", "1", "--quiet"])
    assert code == 2
    assert match in capsys.readouterr().err


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(model="lstm"), "unknown sequence model"),
        (dict(data="ecg"), "unknown sequence data"),
        (dict(drop_mode="rows"), "unknown drop_mode"),
        (dict(val_fraction=1.0), "val_fraction"),
        (dict(model="ode-rnn", mode="opt-disc"), "neural CDE and RDE only"),
        (dict(model="ncde", windows=8), "windows applies to --model nrde"),
        (dict(normalize="minmax"), "unknown normalize"),
        (dict(model="ncde", spline="linear"), "unknown spline"),
    ],
)
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SequenceClassifyConfig(**kwargs).validate()


def test_csv_without_labels(tmp_path):
    p = tmp_path / "n.csv"
    p.write_text("series,time,variable,value\na,0,x,1\nb,0,x,2\nc,0,x,3\n")
    with pytest.raises(ValueError, match="no 'label' column"):
        load_sequence_data(SequenceClassifyConfig(data=str(p)))


def test_every_bundled_set_is_series_data_by_its_short_and_its_uea_name():
    from odeflow.tasks.sequence_classify_config import is_sequence_data
    from odeflow.tasks.series_sets import BUNDLED

    for short, (folder, _) in BUNDLED.items():
        assert is_sequence_data(short) and is_sequence_data(f"uea:{folder}")
    assert is_sequence_data("my/series.csv") and not is_sequence_data("digits")


def test_default_budget_scales_with_the_data_and_stops_with_a_reason(tmp_path, capsys):
    from odeflow.tasks.sequence_classify_config import BUDGET_MAX, BUDGET_MIN, auto_iterations

    assert auto_iterations(1) == BUDGET_MIN and auto_iterations(10**6) == BUDGET_MAX
    assert auto_iterations(10) == max(BUDGET_MIN, min(BUDGET_MAX, 2000))
    path, out = _write_csv(tmp_path / "s.csv", 5, n_series=40), tmp_path / "run"
    argv = ["train", "classify", "--data", str(path), "--model", "gru-dt", "--hidden", "8", "--batch", "8"]
    code = main([*argv, "--patience", "2", "--val-every", "10", "--out", str(out), "--quiet"])
    assert code == 0
    s = json.loads((out / "summary.json").read_text())
    fit = s["n_train"] // 8  # batches per epoch of the fitting split (validation held out)
    assert s["budget"] == f"auto: {auto_iterations(fit)} iterations"
    assert s["stopped"] == "plateau" and s["iterations"] < auto_iterations(fit)  # a separable family plateaus
    best = int(s["tested_weights"].removeprefix("lowest val_loss (iteration ").removesuffix(")"))
    assert (best + 1) % 10 == 0 and s["iterations"] - 1 - 2 * 10 <= best < s["iterations"]
    assert "warning" not in s and s["test_accuracy"] >= 0.8
    assert "stopped: plateau" in capsys.readouterr().out


def test_a_model_at_chance_says_so(tmp_path, capsys):
    """Every series the same, labels alternating: nothing to learn, the warning must appear."""
    rows = ["series,time,variable,value,label"]
    for i in range(30):
        rows += [f"s{i},{t / 4},x,{0.5 * t:.2f},{'ab'[i % 2]}" for t in range(5)]
    path, out = tmp_path / "same.csv", tmp_path / "run"
    path.write_text("\n".join(rows) + "\n")
    argv = ["train", "classify", "--data", str(path), "--model", "gru-dt", "--hidden", "4", "--batch", "8"]
    assert main([*argv, "--iterations", "20", "--val-every", "10", "--out", str(out), "--quiet"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["budget"] == "fixed: 20 iterations" and s["stopped"] in ("budget", "plateau")
    assert "not learnt to classify" in s["warning"]
    assert "warning: " in capsys.readouterr().out


def test_uea_names_are_checked_before_training():
    with pytest.raises(ValueError, match="unknown sequence data 'uea:Wafer'.*gunpoint \\(uea:GunPoint\\)"):
        SequenceClassifyConfig(data="uea:Wafer").validate()
    SequenceClassifyConfig(data="uea:ItalyPowerDemand").validate()


def test_resume_keeps_the_best_validation_weights_and_the_budget_label(tmp_path):
    path, out = _write_csv(tmp_path / "s.csv", 6, n_series=30), tmp_path / "run"
    kw = dict(model="gru-dt", data=str(path), batch=8, val_every=5, hidden=8, patience=None)
    first = train_sequence_classify(SequenceClassifyConfig(iterations=10, **kw), out, progress=False)
    more = SequenceClassifyConfig(iterations=20, **kw)
    again = train_sequence_classify(more, out, progress=False, resume=True)
    assert first["stopped"] == again["stopped"] == "budget" and again["iterations"] == 20
    assert again["budget"] == "fixed: 20 iterations"
    assert torch.load(out / "last.pt", weights_only=True)["task"]["budget"] == "fixed: 20 iterations"
    rows = [r for r in csv.DictReader((out / "metrics.csv").open()) if r.get("val_loss")]
    assert [int(r["iteration"]) for r in rows] == [4, 9, 14, 19]  # validations before and after the resume
    best = min(rows, key=lambda r: float(r["val_loss"]))  # the lowest over both parts of the run
    assert again["tested_weights"] == f"lowest val_loss (iteration {best['iteration']})"


def test_help_shows_the_series_defaults(capsys):
    """Shared options show the series task's own default next to the vector/image one."""
    from odeflow.tasks.classify_config import ClassifyConfig

    with pytest.raises(SystemExit):
        main(["train", "classify", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    seq, vec = SequenceClassifyConfig(), ClassifyConfig()
    assert f"(default {vec.patience}; series data: {seq.patience})" in text
    assert f"(default {vec.min_delta}; series data: {seq.min_delta})" in text
    assert f"(default {vec.method}; series data: {seq.method})" in text
