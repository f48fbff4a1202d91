"""Multilevel schedules: parsing, validation and stage lookup."""

import pytest

from odeflow.solvers.stepping import Adaptive, FixedStep
from odeflow.training.schedule import Stage, parse_schedule, stage_index


def test_text_and_dict_forms_agree():
    text = "until=5 method=rk4 step=0.5 lr=1e-3; until=10 method=dopri5 rtol=1e-6 atol=1e-8 lr=5e-4"
    dicts = [
        dict(until=5, method="rk4", step=0.5, lr=1e-3),
        dict(until=10, method="dopri5", rtol=1e-6, atol=1e-8, lr=5e-4),
    ]
    assert parse_schedule(text) == parse_schedule(dicts)
    stages = parse_schedule(text)
    assert stages[0].step() == FixedStep(0.5) and isinstance(stages[1].step(), Adaptive)
    assert stages[1].step().rtol == 1e-6


@pytest.mark.parametrize("it, k", [(0, 0), (4, 0), (5, 1), (9, 1), (50, 1)])
def test_stage_index(it, k):
    stages = [Stage(5, "rk4", 0.5), Stage(10, "rk4", 0.25)]
    assert stage_index(stages, it) == k


@pytest.mark.parametrize(
    "spec, match",
    [
        ("until=5 method=rk5", "unknown method 'rk5'"),
        ("until=5 method=rk4 stepsize=0.1", "cannot read 'stepsize=0.1'"),
        ("method=rk4", "needs until and method"),
        ("until=5 method=rk4; until=5 method=rk4", "must increase"),
        ("until=5 method=rk4 step=-1", "step must be > 0"),
    ],
)
def test_bad_schedules_are_explained(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_schedule(spec)


def test_empty_schedule():
    assert parse_schedule(None) == [] and parse_schedule("") == []


def test_stage_with_a_step_count():
    stage = parse_schedule("until=5 method=rk4 steps=3")[0]
    assert stage.step() == FixedStep(steps=3) and stage.step().substeps([0.0, 0.7]) == [3]
