import csv
import json

from odeflow.cli.main import main
from odeflow.training.run_folder import load_checkpoint


def test_train_cnf_writes_run_folder(tmp_path):
    out = tmp_path / "cnf"
    code = main(["train", "cnf", "--iterations", "12", "--val-every", "6", "--hidden", "16", "16", "--batch", "128",
                 "--quiet", "--out", str(out)])
    assert code == 0
    for name in ("config.json", "metrics.csv", "best.pt", "last.pt", "summary.json", "density.png"):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert len(rows) == 12 and rows[5]["val_nll"] != "" and rows[0]["val_nll"] == ""
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trained_solver"]["nfe"] == 40  # rk4, h = 0.05 on T = 0.5
    assert summary["rediscretized_dopri5"]["inverse_error"] < 1e-3
    assert load_checkpoint(out / "best.pt")["kind"] == "cnf"


def test_train_cnf_unknown_dataset(tmp_path, capsys):
    assert main(["train", "cnf", "--data", "gaussians8", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "valid: 2spirals, 8gaussians" in capsys.readouterr().err
