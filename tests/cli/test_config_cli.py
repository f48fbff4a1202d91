"""`odeflow train <task>` parsers generated from the task configs: the flags, names, types,
choices and defaults of before the generator stay exactly as they were (train_flags.json),
annotations map to the right options, and per-task help and argument errors need no torch."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Literal, Optional

import pytest

from odeflow.cli.config_cli import argparse_kwargs, fraction, options_of, positive_int
from odeflow.training.config_types import Fraction, NonNegativeFloat, PositiveInt

from .flag_snapshot import snapshot

PINNED = json.loads((Path(__file__).parent / "train_flags.json").read_text())
GENERATED = sorted(PINNED)


@pytest.mark.parametrize("task", sorted(PINNED))
def test_every_flag_stays_as_it_was(task):
    assert snapshot(task) == PINNED[task]


@pytest.mark.parametrize(
    "annotation, expected",
    [
        (int, dict(type=int)),
        (Optional[float], dict(type=float)),
        (str, dict()),
        (bool, dict(action="store_true")),
        (PositiveInt, dict(type=positive_int)),
        (Optional[Fraction], dict(type=fraction)),
        (List[PositiveInt], dict(type=positive_int, nargs="+")),
        (Literal["a", "b"], dict(choices=["a", "b"])),
        (Optional[Literal["x"]], dict(choices=["x"])),
    ],
)
def test_annotations_become_options(annotation, expected):
    assert argparse_kwargs(annotation) == expected


def test_fields_help_and_overrides():
    @dataclass
    class Cfg:
        width_of_net: PositiveInt = 3  # hidden width
        rate: NonNegativeFloat = 0.0
        names: List[str] = field(default_factory=list)
        kind: str = field(default="a", metadata={"help": "which kind"})
        share: float = 0.5  # 50 % of the rows

    opts = options_of(Cfg, {"--k": ("kind", dict(choices=["a", "b"]))}, engine=False)
    assert list(opts) == ["--width-of-net", "--rate", "--names", "--k", "--share"]
    parser = argparse.ArgumentParser()
    for flag, (name, kwargs) in opts.items():
        parser.add_argument(flag, dest=name, **kwargs)
    assert "50 % of the rows" in parser.format_help()
    assert opts["--width-of-net"] == ("width_of_net", dict(type=positive_int, help="hidden width"))
    assert opts["--names"][1] == dict(nargs="+")
    assert opts["--k"] == ("kind", dict(choices=["a", "b"]))
    with pytest.raises(TypeError, match="override"):
        argparse_kwargs(dict)


def test_checks_reject_bad_numbers():
    with pytest.raises(argparse.ArgumentTypeError, match=r"\(0, 1\]"):
        fraction("1.5")
    with pytest.raises(argparse.ArgumentTypeError, match="positive integer"):
        positive_int("0")


@pytest.mark.parametrize("task", GENERATED)
def test_task_help_and_argument_errors_need_no_torch(task):
    code = (
        "import sys\nfrom odeflow.cli.main import main\n"
        f"for argv in (['train', {task!r}, '--help'], ['train', {task!r}, '--batch', '0']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr[-2000:]
    assert "must be a positive integer" in out.stderr


def test_a_config_file_is_parsed_from_its_exact_bytes(tmp_path):
    """TOML refuses a bare carriage return; reading the file in text mode turned it into a newline,
    so a damaged file parsed as other settings. CRLF line ends and a byte-order mark still read."""
    from odeflow.cli.config_options import read_config_file

    bare_cr = tmp_path / "bad.toml"
    bare_cr.write_bytes(b"lr = 1e-3\rsteps = [\r1]\n")
    with pytest.raises(ValueError, match="bad.toml cannot be parsed"):
        read_config_file(bare_cr)
    windows = tmp_path / "win.toml"
    windows.write_bytes(b"\xef\xbb\xbflr = 1e-3\r\nsteps = 5\r\n")
    assert read_config_file(windows) == {"lr": 1e-3, "steps": 5}
