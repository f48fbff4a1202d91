"""A new run never loses an earlier one, and a failed command leaves no folder behind."""

import json

import numpy as np
import pytest

from odeflow.cli.main import main
from odeflow.training.run_folder import check_run_folder


def _series(path, rows=30):
    t = np.linspace(0, 3, rows)
    np.savetxt(path, np.column_stack([t, np.sin(t), np.cos(t)]), delimiter=",", header="t,x,y", comments="")
    return path


def _train(out, data, *extra):
    return main(
        ["train", "timeseries", "--data", str(data), "--out", str(out), "--iterations", "3", "--quiet"]
        + ["--check-at", "--compile", "off", *extra]
    )


def test_check_run_folder_refuses_files_earlier_runs_and_foreign_folders(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        check_run_folder(tmp_path / "file.txt")
    with pytest.raises(ValueError, match="is a file, so no folder"):
        check_run_folder(tmp_path / "file.txt" / "run")
    run = tmp_path / "run"
    run.mkdir()
    check_run_folder(run)  # an empty folder is fine
    (run / "last.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="--resume .*--overwrite"):
        check_run_folder(run)
    check_run_folder(run, overwrite=True)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    with pytest.raises(ValueError, match="not an odeflow run folder"):
        check_run_folder(tmp_path / "mine", overwrite=True)


def test_cli_refuses_an_existing_run_and_overwrites_only_when_asked(tmp_path, capsys):
    data = _series(tmp_path / "s.csv")
    out = tmp_path / "run"
    assert _train(out, data) == 0
    first = (out / "metrics.csv").read_text()
    assert _train(out, data, "--lr", "0.01") == 2
    assert "already exists" in capsys.readouterr().err and (out / "metrics.csv").read_text() == first
    assert _train(out, data, "--lr", "0.01", "--overwrite") == 0
    assert json.loads((out / "config.json").read_text())["lr"] == 0.01
    assert (out / "best.pt").is_file()  # timeseries runs keep best.pt too


def test_cli_out_naming_a_file_fails_before_work(tmp_path, capsys):
    data = _series(tmp_path / "s.csv")
    target = tmp_path / "results.txt"
    target.write_text("keep me")
    assert _train(target, data) == 2
    assert "is a file" in capsys.readouterr().err and target.read_text() == "keep me"


@pytest.mark.parametrize("bad", ["missing", "folder", "header_only", "text"])
def test_a_failed_command_leaves_no_run_folder(tmp_path, bad):
    data = {
        "missing": tmp_path / "nope.csv",
        "folder": tmp_path,
        "header_only": tmp_path / "h.csv",
        "text": tmp_path / "t.csv",
    }[bad]
    (tmp_path / "h.csv").write_text("t,x,y\n")
    (tmp_path / "t.csv").write_text("t,x,y\n0,a,b\n1,c,d\n")
    out = tmp_path / "run"
    assert _train(out, data) == 2
    assert not out.exists()


def test_demo_and_check_gradient_refuse_a_file_before_work(tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    assert main(["demo", "--out", str(target), "--quiet"]) == 2
    assert main(["check-gradient", "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.count("is a file") == 2 and target.read_text() == "keep me"


def test_discover_refuses_a_file_or_an_earlier_run_before_any_fit(tmp_path, capsys):
    data = _series(tmp_path / "s.csv")
    target = tmp_path / "out.txt"
    target.write_text("x")
    args = ["discover", "--data", str(data), "--quiet", "--iterations", "1"]
    assert main([*args, "--out", str(target)]) == 2
    earlier = tmp_path / "run"
    earlier.mkdir()
    (earlier / "equations.txt").write_text("dx/dt = 0\n")
    assert main([*args, "--out", str(earlier)]) == 2
    assert main([*args, "--out", str(tmp_path / "new"), "--validation", "1.5"]) == 2
    err = capsys.readouterr().err
    assert "is a file" in err and "--overwrite" in err and "--validation" in err
    assert (earlier / "equations.txt").read_text() == "dx/dt = 0\n" and not (tmp_path / "new").exists()


def test_overwrite_keeps_the_earlier_run_when_the_new_one_fails_before_it_starts(tmp_path):
    """--overwrite sets the old run aside; a data error afterwards puts it back at exit."""
    import subprocess
    import sys

    data = _series(tmp_path / "s.csv")
    out = tmp_path / "run"
    assert _train(out, data) == 0
    first = (out / "metrics.csv").read_text()

    def cli(*args: str) -> int:
        code = f"from odeflow.cli.main import main; raise SystemExit(main({list(args)!r}))"
        return subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120).returncode

    base = ["train", "timeseries", "--out", str(out), "--iterations", "3", "--quiet", "--compile", "off"]
    assert cli(*base, "--data", str(tmp_path / "missing.csv"), "--overwrite") == 2
    assert (out / "metrics.csv").read_text() == first
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert cli(*base, "--data", str(data), "--overwrite", "--lr", "0.02") == 0
    assert json.loads((out / "config.json").read_text())["lr"] == 0.02
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
