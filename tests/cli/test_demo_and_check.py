import json

from odeflow.cli.main import main


def test_demo_writes_run_folder(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--iterations", "30"]) == 0
    rows = json.loads((out / "stats.json").read_text())
    assert {r["run"] for r in rows} >= {"rk4 h=0.05", "dopri5 1e-6"}
    assert all(r["max_error"] < 1e-2 for r in rows)
    assert (out / "spiral.png").is_file()
    for name in ("metrics.csv", "summary.json", "density.png", "forward_inverse.png", "best.pt"):
        assert (out / "cnf" / name).is_file(), name


def test_check_gradient_cli(tmp_path, capsys):
    assert main(["check-gradient", "--mode", "disc-opt", "--out", str(tmp_path)]) == 0
    assert "PASSED" in capsys.readouterr().out
    assert (tmp_path / "check.png").is_file()
