"""Settings that cannot work are usage errors from argparse (exit 2, a message, no traceback)."""

import builtins

import pytest

from odeflow.cli.main import main


@pytest.mark.parametrize("task", ["cnf", "timeseries"])
@pytest.mark.parametrize(
    "flag,value",
    [
        ("--iterations", "-5"),
        ("--iterations", "0"),
        ("--batch", "0"),
        ("--lr", "0"),
        ("--lr", "-1e-3"),
        ("--checkpoint-every", "0"),
        ("--val-every", "x"),
    ],
)
def test_non_positive_settings_are_argparse_errors(task, flag, value, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", task, f"{flag}={value}", "--quiet", "--out", str(tmp_path / "r")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}" in err and ("positive" in err or "> 0" in err)
    assert not (tmp_path / "r").exists()


def test_tensorboard_without_the_package_is_explained(tmp_path, capsys, monkeypatch):
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    code = main(["train", "timeseries", "--iterations", "2", "--tensorboard", "--quiet", "--out", str(tmp_path / "r")])
    assert code == 2 and "pip install 'odeflow[tensorboard]'" in capsys.readouterr().err


def test_resume_options_are_checked(tmp_path, capsys):
    assert main(["train", "timeseries", "--resume", str(tmp_path / "nothing"), "--quiet"]) == 2
    assert "does not exist" in capsys.readouterr().err
    run = tmp_path / "run"
    assert main(["train", "timeseries", "--iterations", "3", "--check-at", "--quiet", "--out", str(run)]) == 0
    assert main(["train", "timeseries", "--resume", str(run), "--lr", "0.5", "--quiet"]) == 2
    assert "changed settings ['lr']" in capsys.readouterr().err
    assert main(["train", "timeseries", "--resume", str(run), "--iterations", "5", "--quiet"]) == 0
    assert len((run / "metrics.csv").read_text().strip().splitlines()) == 1 + 5
