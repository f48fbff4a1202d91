"""The `odeflow` entry point: --version, and help/usage errors that never import torch."""

import subprocess
import sys

import pytest

import odeflow
from odeflow.cli.commands import COMMANDS, TRAIN_TASKS
from odeflow.cli.main import build_parser, main

PROBE = """
import sys
from odeflow.cli.main import main
try:
    main({argv!r})
except SystemExit:
    pass
print("TORCH" if "torch" in sys.modules else "NO-TORCH")
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["train", "--help"],
        ["compare", "--help"],
        ["--version"],
        ["trian"],
        ["train", "cnff"],
        [],
        ["demo", "--bogus"],
        ["check-gradient", "--help"],
        ["evaluate", "--bogus"],
        ["sample", "--help"],
        ["discover", "--bogus"],
        ["compare", "timeseries", "--seeds", "0"],
    ],
)
def test_help_and_usage_errors_do_not_import_torch(argv):
    done = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True)
    assert done.stdout.strip().splitlines()[-1] == "NO-TORCH", done.stderr


def test_version_is_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"odeflow {odeflow.__version__}"


def test_every_command_and_task_builds_in_full():
    parser = build_parser()  # no argv: everything built, as docs tools need
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == set(COMMANDS)
    train = next(a for a in sub.choices["train"]._actions if a.dest == "task")
    assert set(train.choices) == set(TRAIN_TASKS)
    for task, task_parser in train.choices.items():
        assert any(a.dest == "out" for a in task_parser._actions), task


def test_lazy_package_keeps_functions_over_submodules():
    import odeflow.odeint  # noqa: F401  (binds the submodule name on the package)
    import odeflow.solve  # noqa: F401

    assert callable(odeflow.solve) and odeflow.solve.__name__ == "solve"
    assert odeflow.odeint.__name__ == "odeint"
    with pytest.raises(AttributeError):
        _ = odeflow.no_such_name
