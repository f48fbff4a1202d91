"""The guides (docs/*.md, README.md) and the documentation site.

- Every fenced block names its language. Python blocks run as written (one namespace per file,
  in a fresh folder). Shell blocks train for minutes or need files and a GPU, so each one is
  marked `<!-- not run: REASON -->` right above it; every `odeflow ...` command in them must
  still parse with today's flags (a renamed option breaks the docs, and this test). A block of
  `make ...` lines only (README's two commands) is what CI itself runs.
- `mkdocs build --strict` succeeds: a broken API reference or link fails the suite.
"""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import pytest

from odeflow.cli.main import build_parser

REPO = Path(__file__).resolve().parents[1]
GUIDES = sorted((REPO / "docs").glob("*.md")) + [REPO / "README.md"]
FENCE = re.compile(r"(?P<before>(?:<!--[^\n]*-->\n)?)^```(?P<lang>[^\n`]*)\n(?P<body>.*?)^```\s*$", re.S | re.M)
NOT_RUN = re.compile(r"<!--\s*not run:\s*(\S.*?)\s*-->")
SHELL = {"bash", "sh", "shell", "console"}
TEXT = {"text", "toml", "json", "csv"}


def blocks(path: Path) -> List[Tuple[str, str, str]]:
    """(language, body, marker line above) of each fenced block."""
    return [(m["lang"].strip(), m["body"], m["before"]) for m in FENCE.finditer(path.read_text())]


def odeflow_commands(body: str) -> List[List[str]]:
    """The argument lists of the `odeflow ...` commands in a shell block (continuations joined)."""
    commands = []
    for line in body.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if "odeflow.cli.main" in words:  # torchrun ... -m odeflow.cli.main ARGS
            commands.append(words[words.index("odeflow.cli.main") + 1 :])
        elif words[:1] == ["odeflow"]:
            commands.append(words[1:])
    return commands


@pytest.mark.parametrize("path", GUIDES, ids=lambda p: p.name)
def test_every_block_names_a_known_language(path):
    for lang, _, _ in blocks(path):
        assert lang in SHELL | TEXT | {"python"}, f"{path.name}: a code block needs a language (got {lang!r})"


@pytest.mark.parametrize("path", GUIDES, ids=lambda p: p.name)
def test_shell_blocks_are_marked_and_their_commands_parse(path):
    for lang, body, before in blocks(path):
        if lang not in SHELL:
            continue
        if all(line.startswith("make ") for line in body.strip().splitlines()):
            continue  # `make demo` / `make test`: what CI itself runs
        assert NOT_RUN.search(before), f"{path.name}: shell block without '<!-- not run: REASON -->':\n{body}"
        for argv in odeflow_commands(body):
            try:
                build_parser(argv).parse_args(argv)
            except SystemExit as exit_:
                pytest.fail(f"{path.name}: `odeflow {' '.join(argv)}` does not parse (exit {exit_.code})")


@pytest.mark.parametrize(
    "path", [p for p in GUIDES if any(lang == "python" for lang, _, _ in blocks(p))], ids=lambda p: p.name
)
def test_python_blocks_run(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = "\n".join(body for lang, body, before in blocks(path) if lang == "python" and not NOT_RUN.search(before))
    exec(compile(code, str(path), "exec"), {"__name__": "__docs__"})


def test_site_builds_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "api" / "solve" / "index.html").is_file()
