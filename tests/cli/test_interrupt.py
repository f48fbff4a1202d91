"""SIGTERM during `odeflow discover`'s fit ends it within seconds: exit 130, a one-line message,
no traceback and no half-written run folder."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.mark.slow  # a subprocess that imports torch (~15 s on a busy machine)
def test_sigterm_during_the_discover_fit(tmp_path):
    t = np.linspace(0, 10, 80)
    np.savetxt(
        tmp_path / "s.csv", np.column_stack([t, np.sin(t), np.cos(t)]), delimiter=",", header="t,x,y", comments=""
    )
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "odeflow.cli.main", "discover", "--data", str(tmp_path / "s.csv"), "--out", str(out)]
    env = dict(os.environ, PYTHONPATH=str(SRC))
    proc = subprocess.Popen(
        cmd + ["--iterations", "100000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # wait for the fit to start
        if "fitting the neural ODE" in line:
            break
    time.sleep(1.0)
    sent = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert time.perf_counter() - sent < 5.0
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not out.exists()
