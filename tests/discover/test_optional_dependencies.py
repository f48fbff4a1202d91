import sys

import pytest
import torch

from odeflow.cli.main import main
from odeflow.discover.sindy import fit_sindy
from odeflow.models import NeuralSDE


def test_missing_pysindy_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pysindy", None)  # makes `import pysindy` raise ImportError
    with pytest.raises(ImportError, match=r"pip install 'odeflow\[sindy\]'"):
        fit_sindy(torch.linspace(0, 1, 5), torch.rand(5, 1), ["x"])


def test_missing_torchsde_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchsde", None)
    with pytest.raises(ImportError, match=r"pip install 'odeflow\[sde\]'"):
        NeuralSDE(1).sample(torch.zeros(2, 1), torch.linspace(0, 1, 3))


def test_cli_reports_missing_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "torchsde", None)
    assert main(["train", "sde", "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert "odeflow[sde]" in capsys.readouterr().err
