"""The path of a state through `solve`: solve -> (compile wrapper) -> problem -> gradient ->
loop, each file visited once: no call from a lower file back into one already on the stack."""

from __future__ import annotations

import os
import sys
from typing import Callable, List, Tuple

import pytest
import torch

import odeflow
from odeflow import DiscretizeOptimize, FixedStep, OptimizeDiscretize

ROOT = os.path.dirname(odeflow.__file__)
# the rooms of the path and their entry functions; the vector fields handed down (the user's,
# the adjoint's augmented one) and leaves (state packing, tableaus) may be called from anywhere
ENTRIES = {
    ("solve.py", "solve"),
    ("compiling.py", "run_compiled"),
    ("solving.py", "run"),
    ("solvers/problem.py", "make_problem"),
    ("solvers/event_mode.py", "until_event"),
    ("solvers/plain_run.py", "run_plain"),
    ("gradients/discretize_optimize.py", "run"),
    ("gradients/optimize_discretize.py", "run"),
}
D = torch.float64


def trace(go: Callable[[], object]) -> Tuple[List[str], List[str]]:
    """odeflow files in the order they are first entered, and entries into a room whose entry
    function is already on the stack (a lower room calling back up)."""
    stack: List[Tuple[str, bool]] = []
    order: List[str] = []
    reentries: List[str] = []

    def prof(frame, event, arg):
        path = frame.f_code.co_filename
        rel = os.path.relpath(path, ROOT) if path.startswith(ROOT) else ""
        if event == "call":
            entry = (rel, frame.f_code.co_name) in ENTRIES
            if entry and (rel, True) in stack:
                reentries.append(f"{rel} ({frame.f_code.co_name})")
            if rel and rel not in order:
                order.append(rel)
            stack.append((rel, entry))
        elif event == "return" and stack:
            stack.pop()

    sys.setprofile(prof)
    try:
        go()
    finally:
        sys.setprofile(None)
    return order, reentries


class Field(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(2, 2).to(D)

    def forward(self, t, y):
        return torch.tanh(self.lin(y))


field = Field()


Y0 = torch.ones(3, 2, dtype=D)
T = torch.tensor([0.0, 0.5, 1.0], dtype=D)
CASES = {
    "adaptive": dict(),
    "fixed": dict(method="rk4", step=FixedStep(0.1)),
    "adjoint": dict(gradient=OptimizeDiscretize()),
    "checkpointed": dict(method="rk4", step=FixedStep(0.1), gradient=DiscretizeOptimize(checkpoints=2)),
    "auto-compile": dict(compile="auto"),
    "events": dict(events=lambda t, y: y[0, 0] - 0.9),
    "implicit": dict(method="radauIIA5"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_room_is_visited_once(case):
    kwargs = CASES[case]
    odeflow.solve(field, Y0, T, **kwargs)  # warm: lazy imports, caches
    y0 = Y0.clone().requires_grad_()

    def go():
        odeflow.solve(field, y0, T, **kwargs).ys.sum().backward()

    order, reentries = trace(go)
    assert reentries == []
    rooms = ["solve.py", "compiling.py", "solving.py", "solvers/problem.py", "solvers/loop.py"]
    first = [order.index(r) if r in order else None for r in rooms]
    assert (first[1] is not None) == ("compile" in kwargs)
    seen = [i for i in first if i is not None]
    assert seen == sorted(seen), order
    assert first[0] == 0 and None not in (first[2], first[3])


def test_the_tracer_sees_a_call_back_up():
    import odeflow.solving as solving

    def calls_back(call, compiled=False):
        return odeflow.solve(field, Y0, T)

    real = solving.run
    try:
        solving.run = calls_back
        import odeflow.compiling as compiling

        compiling.run = calls_back
        _, reentries = trace(lambda: odeflow.solve(field, Y0, T, compile=odeflow.AutoCompile()))
    finally:
        solving.run = real
        compiling.run = real
    assert reentries == ["solve.py (solve)"]
