import json
from pathlib import Path

from odeflow.cli.config_options import read_config_file
from odeflow.cli.demo import FAST_RECIPE
from odeflow.cli.main import main

REPO = Path(__file__).resolve().parents[2]


def test_demo_writes_run_folder(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--iterations", "30", "--quiet"]) == 0
    rows = json.loads((out / "stats.json").read_text())
    assert {r["run"] for r in rows} >= {"rk4 h=0.05", "dopri5 1e-6"}
    assert all(r["max_error"] < 1e-2 for r in rows)
    assert (out / "spiral.png").is_file()
    for name in ("metrics.csv", "summary.json", "density.png", "forward_inverse.png", "best.pt"):
        assert (out / "cnf" / name).is_file(), name
    same_clock = json.loads((out / "same_clock.json").read_text())
    assert same_clock["fast_recipe"]["iterations"] == 30
    assert same_clock["ffjord_recipe"]["iterations"] >= 1
    text = capsys.readouterr().out
    assert "figures:" in text and "train longer" in text and "docs/cnf.md" in text


def test_demo_recipe_is_the_shipped_fast_config():
    assert read_config_file(REPO / "configs" / "cnf_fast.toml") == FAST_RECIPE


def test_demo_ffjord_side_is_ffjords_recipe_not_odeflows_defaults():
    from odeflow.cli.demo import FFJORD_RECIPE
    from odeflow.tasks.cnf2d import CNFConfig

    cfg = CNFConfig(**FFJORD_RECIPE)
    assert cfg.schedule is None and not cfg.zero_init and cfg.kinetic == cfg.jacobian == 0
    assert (cfg.mode, cfg.method, cfg.step_size, cfg.rtol, cfg.batch, cfg.lr) == (
        "opt-disc",
        "dopri5",
        None,
        1e-5,
        512,
        1e-3,
    )


def test_check_gradient_cli(tmp_path, capsys):
    assert main(["check-gradient", "--mode", "disc-opt", "--out", str(tmp_path)]) == 0
    assert "PASSED" in capsys.readouterr().out
    assert (tmp_path / "check.png").is_file()
