"""`odeflow evaluate` on sequence-classify runs: the saved model on the run's test split gives
back the test accuracy and confusion matrix that training wrote to summary.json."""

import json
import math

import pytest
import torch

from odeflow.cli.main import main


def _write_csv(path, seed, n_series):
    """Two classes (level near +1 or -1 plus a random oscillation), two variables observed at
    partly different irregular times."""
    g = torch.Generator().manual_seed(seed)
    rows = ["series,time,variable,value,label"]
    for i in range(n_series):
        level = (1.0 if i % 2 else -1.0) * float(0.7 + 0.6 * torch.rand(1, generator=g))
        freq, phase = float(1 + 3 * torch.rand(1, generator=g)), 2 * math.pi * float(torch.rand(1, generator=g))
        for var, wave in (("u", math.sin), ("v", math.cos)):
            times = sorted({round(0.05 * int(t), 2) for t in torch.randint(0, 40, (8,), generator=g)})
            for t in times:
                rows.append(f"s{i},{t},{var},{level + 0.5 * wave(freq * t + phase):.4f},{'up' if i % 2 else 'down'}")
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize(
    "command,model,drop,seed",
    [
        ("classify", "gru-d", 0.0, 5),
        ("classify", "latent-ode", 0.4, 6),
        ("sequence-classify", "ode-rnn", 0.2, 7),
        ("classify", "nrde", 0.3, 8),
    ],
)
def test_evaluate_reproduces_summary(tmp_path, capsys, command, model, drop, seed):
    """Series given to `train classify` go to the sequence-classify task, which is also its own
    `train sequence-classify` (a registry line with a generated parser)."""
    csv = _write_csv(tmp_path / "s.csv", seed, n_series=40)
    out = tmp_path / "run"
    # val_every beyond the run: best.pt and last.pt both hold the final model, which summary.json scored
    assert (
        main(
            [
                "train",
                command,
                "--data",
                str(csv),
                "--model",
                model,
                "--drop",
                str(drop),
                "--iterations",
                "12",
                "--batch",
                "8",
                "--val-every",
                "12",
                "--hidden",
                "8",
                "--field-hidden",
                "8",
                "--latent-dim",
                "4",
                "--seed",
                str(seed),
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    capsys.readouterr()
    for target in (out, out / "last.pt"):
        assert main(["evaluate", str(target), "--json", "--quiet"]) == 0
        result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert result["n_test"] == summary["n_test"] == 8  # 20 % of 40
        assert result["accuracy"] == pytest.approx(summary["test_accuracy"], abs=1e-6)
        assert result["loss"] == pytest.approx(summary["test_loss"], rel=1e-5)
        assert result["confusion"] == summary["test_confusion"]
        assert result["model"] == model and result["drop"] == drop
    assert main(["evaluate", str(out), "--quiet"]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_evaluate_errors(tmp_path, capsys):
    csv = _write_csv(tmp_path / "s.csv", 1, n_series=30)
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "classify",
                "--data",
                str(csv),
                "--model",
                "gru-dt",
                "--iterations",
                "2",
                "--batch",
                "8",
                "--hidden",
                "4",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["evaluate", str(out), "--method", "rk4"]) == 2
    assert "do not apply to sequence-classify" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["evaluate", str(empty)]) == 2
    assert "no best.pt or last.pt" in capsys.readouterr().err
