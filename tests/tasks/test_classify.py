"""The classify task on the engine: run folder contents, epochs -> iterations, NFE metrics."""

import csv
import json

import pytest

from odeflow.cli.main import main
from odeflow.tasks.classify import ClassifyConfig, iterations_per_epoch, train_classify


def _rows(folder):
    with open(folder / "metrics.csv") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize(
    "model,mode", [("odenet", "disc-opt"), ("anode", "opt-disc"), ("sonode", "disc-opt"), ("resnet", "disc-opt")]
)
def test_annuli_run_folder(tmp_path, model, mode):
    cfg = ClassifyConfig(
        model=model,
        data="annuli",
        mode=mode,
        iterations=6,
        batch=64,
        val_every=3,
        hidden=[8],
        n_steps=2,
        checkpoint_every=100,
    )
    s = train_classify(cfg, tmp_path, progress=False)
    assert 0.0 <= s["test_accuracy"] <= 1.0 and s["parameters"] > 0
    assert s["test_nfe"] == (2 if model == "resnet" else 8)
    for name in ("confusion.png", "decision_boundary.png", "flow.png", "summary.json", "metrics.csv"):
        assert (tmp_path / name).is_file(), name
    rows = _rows(tmp_path)
    assert {"accuracy", "nfe_forward", "nfe_backward", "val_accuracy"} <= set(rows[-1])
    backward = float(rows[0]["nfe_backward"])
    assert (backward > 0) == (mode == "opt-disc")  # only the adjoint evaluates f backwards
    assert json.loads((tmp_path / "summary.json").read_text())["test_accuracy"] == s["test_accuracy"]


def test_epochs_become_iterations(tmp_path):
    cfg = ClassifyConfig(model="resnet", data="annuli", epochs=2, batch=256, hidden=[8], n_steps=2, val_every=100)
    s = train_classify(cfg, tmp_path, progress=False)
    # 2000 training points, 200 held out -> 1800 // 256 = 7 batches per epoch
    assert s["iterations_per_epoch"] == 7 and s["iterations"] == 14 and s["epochs_trained"] == 2
    assert len(s["test_confusion"]) == 2 and sum(map(sum, s["test_confusion"])) == 1000


@pytest.mark.slow
def test_digits_images(tmp_path):
    pytest.importorskip("sklearn")
    cfg = ClassifyConfig(model="odenet", data="digits", epochs=1, batch=256, channels=8, n_steps=1, val_every=100)
    s = train_classify(cfg, tmp_path, progress=False)
    # 1797 digits: 1438 train, 144 of them held out -> 1294 // 256 = 5 batches per epoch
    assert s["iterations"] == s["iterations_per_epoch"] == 5
    assert len(s["test_confusion"]) == 10 and sum(map(sum, s["test_confusion"])) == 359
    assert (tmp_path / "confusion.png").is_file() and not (tmp_path / "flow.png").exists()


def test_kinetic_is_logged(tmp_path):
    cfg = ClassifyConfig(
        model="odenet", data="annuli", iterations=2, batch=32, hidden=[8], n_steps=2, kinetic=0.1, val_every=2
    )
    train_classify(cfg, tmp_path, progress=False)
    assert float(_rows(tmp_path)[0]["kinetic"]) > 0


def test_cli(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "classify",
            "--model",
            "resnet",
            "--data",
            "annuli",
            "--iterations",
            "3",
            "--batch",
            "32",
            "--hidden",
            "8",
            "--val-every",
            "3",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    assert "test accuracy" in capsys.readouterr().out
    assert (out / "summary.json").is_file()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(model="densenet"), "unknown model"),
        (dict(data="svhn"), "unknown data"),
        (dict(model="resnet", n_steps=None), "fixed grid"),
        (dict(epochs=0), "epochs"),
    ],
)
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ClassifyConfig(**kwargs).validate()


def test_iterations_per_epoch():
    assert iterations_per_epoch(1000, 128) == 7
    with pytest.raises(ValueError, match="larger than the training set"):
        iterations_per_epoch(10, 128)


def test_evaluate_checkpoint(tmp_path, capsys):
    cfg = ClassifyConfig(model="odenet", data="annuli", iterations=4, batch=64, hidden=[8], n_steps=2, val_every=4)
    s = train_classify(cfg, tmp_path, progress=False)
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "last.pt"), "--json"]) == 0
    same = json.loads(capsys.readouterr().out)
    assert same["accuracy"] == pytest.approx(s["test_accuracy"]) and same["nfe"] == 8
    assert main(["evaluate", str(tmp_path / "last.pt"), "--method", "dopri5", "--rtol", "1e-6", "--json"]) == 0
    fine = json.loads(capsys.readouterr().out)
    assert fine["method"] == "dopri5" and fine["nfe"] > 8
