"""`odeflow train cnf` under torchrun (gloo, 2 CPU processes) gives the parameters of one
process with the same global batch and seed: DDP averages the shards' gradients, the
Hutchinson noise of each shard is its rows of the global draw, TO-FLOW's dT is all-reduced,
and the adjoint's autograd.Function runs inside DDP. Validation NLL is reduced over ranks."""

import csv
import json
import os
import subprocess
import sys

import pytest

from odeflow.cli.main import main
from odeflow.training.checkpoint import load_checkpoint

COMMON = [
    "train",
    "cnf",
    "--iterations",
    "20",
    "--hidden",
    "16",
    "16",
    "--batch",
    "64",
    "--val-every",
    "10",
    "--val-size",
    "256",
    "--quiet",
]
CASES = {
    "disc-opt": [],
    "opt-disc": ["--mode", "opt-disc", "--method", "dopri5", "--step-size", "0", "--rtol", "1e-5", "--atol", "1e-5"],
    "learn-T": ["--learn-T", "--kinetic", "0.01", "--jacobian", "0.01"],
}


def _torchrun(args, out):
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "odeflow.cli.main",
        *args,
        "--out",
        str(out),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("case", list(CASES))
def test_two_processes_match_one(tmp_path, case):
    args = COMMON + CASES[case]
    proc = _torchrun(args, tmp_path / "two")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("run folder") == 1  # only rank 0 reports
    assert main(args + ["--out", str(tmp_path / "one")]) == 0
    one, two = (load_checkpoint(tmp_path / d / "last.pt")["model"] for d in ("one", "two"))
    diff = max(float((one[k] - two[k]).abs().max()) for k in one)
    assert diff <= 1e-5, diff
    config = json.loads((tmp_path / "two" / "config.json").read_text())
    assert config["world_size"] == 2 and config["per_rank_batch"] == 32
    rows = {d: list(csv.DictReader((tmp_path / d / "metrics.csv").open())) for d in ("one", "two")}
    assert len(rows["two"]) == 20
    val = [(float(a["val_nll"]), float(b["val_nll"])) for a, b in zip(rows["one"], rows["two"]) if a["val_nll"]]
    assert len(val) == 2 and all(abs(a - b) < 1e-4 for a, b in val)
    if case == "learn-T":
        assert float(rows["one"][-1]["T"]) == pytest.approx(float(rows["two"][-1]["T"]), abs=1e-5)
        assert float(one["T"]) != 0.5
    if case == "opt-disc":
        assert all(float(r["nfe_backward"]) > 0 for r in rows["two"])


def test_timeseries_runs_replicated_under_torchrun(tmp_path):
    args = ["train", "timeseries", "--iterations", "5", "--check-at", "--quiet"]
    proc = _torchrun(args, tmp_path / "two")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert main(args + ["--out", str(tmp_path / "one")]) == 0
    rows = {d: list(csv.DictReader((tmp_path / d / "metrics.csv").open())) for d in ("one", "two")}
    assert [float(r["loss"]) for r in rows["one"]] == pytest.approx([float(r["loss"]) for r in rows["two"]], rel=1e-9)
    assert json.loads((tmp_path / "two" / "config.json").read_text())["per_rank_batch"] == 1


def test_batch_that_does_not_split_is_refused(tmp_path):
    proc = _torchrun(COMMON[:-1] + ["--batch", "63", "--quiet"], tmp_path / "odd")
    assert proc.returncode != 0 and "multiple of 2" in proc.stderr


def test_a_training_process_never_imports_pandas_or_pyarrow(tmp_path):
    """pandas (and through it pyarrow, with its own threads) stays out of a `train` process: with
    pyarrow installed, a torchrun child that had imported it aborted at exit ("terminate called
    without an active exception"). Only reading a user's table or the GAS pickle imports pandas."""
    script = (
        "import sys, odeflow.data.tabular, odeflow.tasks.tabular\n"
        "from odeflow.cli.main import main\n"
        f"assert main({COMMON[:2] + ['--iterations', '2', '--batch', '32', '--val-size', '32', '--quiet']!r}"
        f" + ['--out', {str(tmp_path / 'run')!r}]) == 0\n"
        "print(sorted({'pandas', 'pyarrow'} & {m.split('.')[0] for m in sys.modules}))\n"
    )
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"
