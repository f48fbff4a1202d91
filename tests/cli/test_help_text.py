"""Every generated `--help` text is whole: a field comment continued on the next lines is not cut."""

import argparse

import pytest

from odeflow.cli.commands import TRAIN_TASKS
from odeflow.cli.config_cli import field_comments
from odeflow.cli.main import build_parser


def _helps(task):
    parser = build_parser(["train", task])
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["train"]
    tp = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction)).choices[task]
    return {" ".join(a.option_strings): a.help or "" for a in tp._actions if a.option_strings}


@pytest.mark.parametrize("task", sorted(TRAIN_TASKS))
def test_every_help_has_balanced_parentheses(task):
    for flag, text in _helps(task).items():
        assert text.count("(") == text.count(")"), f"{task} {flag}: {text!r}"


def test_a_comment_continued_on_the_next_lines_is_kept_whole():
    from odeflow.tasks.tabular_config import TabularConfig
    from odeflow.tasks.timeseries_config import TimeSeriesConfig

    assert field_comments(TabularConfig)["val_max"].endswith("the whole validation set))")
    assert "rk4 on the data grid" in field_comments(TimeSeriesConfig)["mode"]  # a comment inside a wrapped field


def test_a_section_comment_is_not_glued_to_the_field_above():
    from dataclasses import dataclass

    @dataclass
    class Sample:
        a: int = 1  # the first
        # Model settings
        b: int = 2  # the second (with a note,
        # carried on here)
        c: int = 3  # the third
        # model (a section in lower case)
        d: int = 4

    comments = field_comments(Sample)
    assert comments == {"a": "the first", "b": "the second (with a note, carried on here)", "c": "the third"}
