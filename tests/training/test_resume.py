"""Exact resume: a CNF run killed with SIGKILL part-way and resumed with `--resume` ends with
parameters bitwise-identical to the uninterrupted run, and metrics.csv has each iteration once.

The run exercises every piece of state: Hutchinson noise (torch RNG), TO-FLOW's T and its own
Adam, a multilevel schedule whose stage changes after the restart, and periodic validation."""

import csv
import json
import os
import signal
import subprocess
import sys

import torch

from odeflow.cli.main import main
from odeflow.training.checkpoint import load_checkpoint

ARGS = [
    "train",
    "cnf",
    "--iterations",
    "24",
    "--hidden",
    "8",
    "8",
    "--batch",
    "32",
    "--val-every",
    "4",
    "--val-size",
    "64",
    "--checkpoint-every",
    "5",
    "--learn-T",
    "--kinetic",
    "0.01",
    "--jacobian",
    "0.01",
    "--schedule",
    "until=12 method=rk4 steps=2 lr=1e-2; until=24 method=rk4 steps=3 lr=5e-3",
    "--quiet",
]

# The child dies by SIGKILL when iteration KILL_AT starts: no handler, no final checkpoint.
CHILD = """
import os, signal, sys
from odeflow.cli.main import main
from odeflow.tasks import cnf2d

class Killed(cnf2d.CNF2DTask):
    def before_iteration(self, iteration, ctx):
        if iteration == int(os.environ["KILL_AT"]):
            os.kill(os.getpid(), signal.SIGKILL)
        super().before_iteration(iteration, ctx)

cnf2d.CNF2DTask = Killed
sys.exit(main(sys.argv[1:]))
"""


def _iterations(folder):
    return [int(r["iteration"]) for r in csv.DictReader((folder / "metrics.csv").open())]


def test_sigkill_then_resume_is_bitwise_identical(tmp_path):
    # the child computes with as many threads as this process, so that the arithmetic is the same
    env = dict(os.environ, KILL_AT="13", OMP_NUM_THREADS=str(torch.get_num_threads()))
    killed = tmp_path / "killed"
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *ARGS, "--out", str(killed)], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert load_checkpoint(killed / "last.pt")["iteration"] == 9
    assert _iterations(killed) == list(range(13))  # rows 10..12 were logged after the last checkpoint

    assert main(["train", "cnf", "--resume", str(killed), "--quiet"]) == 0
    straight = tmp_path / "straight"
    assert main([*ARGS, "--out", str(straight)]) == 0
    a, b = load_checkpoint(killed / "last.pt"), load_checkpoint(straight / "last.pt")
    assert a["iteration"] == b["iteration"] == 23
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert _iterations(killed) == list(range(24))
    rows = {d: list(csv.DictReader((d / "metrics.csv").open())) for d in (killed, straight)}
    assert [r["loss"] for r in rows[killed]] == [r["loss"] for r in rows[straight]]
    assert [r["T"] for r in rows[killed]] == [r["T"] for r in rows[straight]]
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (killed, straight))
    assert sa["test_nll"] == sb["test_nll"] and sa["iterations"] == 24
