"""compile="auto": the decision of equation (1) with fake timings, what it never compiles, its
fallback to eager, and results equal to eager."""

import json

import pytest
import torch
from torch import nn

import odeflow
from odeflow import Adaptive, AutoCompile, DiscretizeOptimize, FixedStep, OptimizeDiscretize, compiling
from odeflow.solvers import compile_policy as cp

D = torch.float64


def _rec(eager_s=0.1, eager_n=2, calls=3, disk_key=None):
    rec = cp._Record()
    rec.eager_s, rec.eager_n, rec.calls, rec.disk_key = eager_s * eager_n, eager_n, calls, disk_key
    return rec


def test_gains_is_equation_one():
    # 100 calls x 0.1 s x (1 - 1/4) = 7.5 s saved
    assert cp.gains(100, 0.1, 4.0, 7.4)
    assert not cp.gains(100, 0.1, 4.0, 7.6)
    assert not cp.gains(0, 10.0, 100.0, 0.001)


def test_decide_waits_for_the_timed_eager_calls():
    policy = AutoCompile(expected_calls=10_000, eager_calls=3, cold_cost=0.0)
    assert not cp.decide(_rec(eager_n=2), policy)
    assert cp.decide(_rec(eager_n=3), policy)


def test_decide_with_expected_calls_counts_down():
    policy = AutoCompile(expected_calls=300, speedup=4.0, cold_cost=45.0)
    # 297 calls to come x 0.1 s x 0.75 = 22 s < 45 s cold: stay eager
    assert not cp.decide(_rec(eager_s=0.1), policy)
    # at 0.25 s per call: 297 x 0.25 x 0.75 = 56 s > 45 s: compile, and stay compiled
    rec = _rec(eager_s=0.25)
    assert cp.decide(rec, policy)
    rec.eager_s = 0.0
    assert cp.decide(rec, policy)
    # nothing to come: never
    assert not cp.decide(_rec(eager_s=100.0, calls=300), policy)


def test_decide_without_expected_calls_is_ski_rental():
    policy = AutoCompile(speedup=4.0, cold_cost=45.0)
    # as many calls to come as made: 100 x 0.5 s x 0.75 = 37.5 s < 45 s; 130 calls: 48.75 s > 45 s
    assert not cp.decide(_rec(eager_s=0.5, calls=100), policy)
    assert cp.decide(_rec(eager_s=0.5, calls=130), policy)


def test_decide_uses_the_recorded_warm_cost_and_speedup(tmp_path, monkeypatch):
    monkeypatch.setenv("ODEFLOW_CACHE_DIR", str(tmp_path))
    policy = AutoCompile(expected_calls=300, speedup=4.0, cold_cost=45.0, warm_cost=5.0)
    rec = _rec(eager_s=0.03, disk_key="abc")  # 297 x 0.03 x 0.75 = 6.7 s
    assert not cp.decide(rec, policy)  # nothing recorded: cold, 45 s
    cp.write_history("abc", cold_s=40.0)
    assert cp.decide(_rec(eager_s=0.03, disk_key="abc"), policy)  # compiled before: warm, 5 s default
    cp.write_history("abc", warm_s=8.0)
    assert not cp.decide(_rec(eager_s=0.03, disk_key="abc"), policy)  # measured warm cost 8 s > 6.7 s
    cp.write_history("abc", speedup=1.5)
    assert json.loads((tmp_path / "compiled" / "auto-abc.json").read_text()) == dict(
        cold_s=40.0, warm_s=8.0, speedup=1.5
    )
    # measured speedup 1.5: 297 x 0.08 x (1 - 1/1.5) = 7.92 s < 8 s; 397 calls to come: 10.6 s > 8 s
    assert not cp.decide(_rec(eager_s=0.08, disk_key="abc"), policy)
    assert cp.decide(_rec(eager_s=0.08, disk_key="abc"), AutoCompile(expected_calls=400))


def test_decide_never_after_a_failure():
    rec = _rec(eager_s=100.0)
    rec.failed = True
    assert not cp.decide(rec, AutoCompile(expected_calls=10**6, cold_cost=0.0))


def test_timed_solve_measures_calls_and_falls_back_on_failure(monkeypatch, tmp_path):
    monkeypatch.setenv("ODEFLOW_CACHE_DIR", str(tmp_path))
    clock = iter(float(i) for i in range(1000))
    monkeypatch.setattr(compiling.time, "perf_counter", lambda: next(clock))
    rec, policy, calls = cp._Record(), AutoCompile(backward_factor=3.0), []
    rec.disk_key = "k"

    def run(compiled):
        calls.append(compiled)
        if compiled:
            raise ValueError("compile=True could not capture the vector field")
        return "eager result"

    for _ in range(3):
        assert compiling.timed_solve(rec, policy, run, False) == "eager result"
    # the first call is not timed; the second: forward 1 s x 3 vs 2 s between the starts -> 2 s
    assert rec.eager_n == 1 and rec.eager_s == 2.0
    assert compiling.timed_solve(rec, policy, run, True) == "eager result"
    assert calls == [False, False, False, True, False] and rec.failed and not rec.compiled
    # the adjoint's backward counts adjoint_factor forward solves: 1 s x 10 vs 2 s -> 2 s; x 1.5 -> 1.5 s
    rec2 = cp._Record()
    for _ in range(3):
        compiling.timed_solve(rec2, AutoCompile(adjoint_factor=1.5), run, False, adjoint=True)
    assert rec2.eager_n == 1 and rec2.eager_s == 1.5
    with pytest.raises(ValueError, match="could not capture"):
        compiling.timed_solve(cp._Record(), policy, run, True, fallback=False)


def test_timed_solve_records_the_first_compiled_call(monkeypatch, tmp_path):
    monkeypatch.setenv("ODEFLOW_CACHE_DIR", str(tmp_path))
    rec = cp._Record()
    rec.disk_key = "first"
    compiling.timed_solve(rec, AutoCompile(), lambda compiled: None, True)
    assert "cold_s" in cp.read_history("first")
    rec2 = cp._Record()
    rec2.disk_key = "first"
    compiling.timed_solve(rec2, AutoCompile(), lambda compiled: None, True)
    assert "warm_s" in cp.read_history("first")


class Field(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 2).to(D)

    def forward(self, t, y):
        return torch.tanh(self.lin(y))


@pytest.mark.parametrize(
    "kwargs, reason",
    [
        (dict(method="implicit_adams", step=FixedStep(0.1)), "compiles only as a Runge-Kutta"),
        (dict(method="rk4", step=FixedStep(grid=torch.linspace(0, 1, 5, dtype=D))), "explicit grid"),
        (dict(method="rk4", step=FixedStep(0.1), gradient=DiscretizeOptimize(checkpoints=2)), "checkpointed"),
        (
            dict(
                method="dopri5",
                step=Adaptive(),
                gradient=OptimizeDiscretize(params=[torch.ones(2, requires_grad=True)]),
            ),
            "adjoint parameters",
        ),
        (dict(method="rk4", step=FixedStep(0.1), events=lambda t, y: y[0]), "events"),
    ],
)
def test_auto_never_compiles_what_cannot_be_compiled(kwargs, reason):
    kwargs = dict(kwargs)
    events = kwargs.pop("events", None)
    assert reason in compiling.compile_possible(
        Field(), kwargs["method"], kwargs["step"], kwargs.get("gradient"), events
    )


def test_auto_needs_a_cxx_compiler(monkeypatch):
    monkeypatch.setattr(cp, "has_cxx_compiler", lambda: False)
    assert compiling.compile_possible(Field(), "rk4", FixedStep(0.1), None, None) == "no C++ compiler"
    f = Field()
    f.callback_step = lambda t0, y0, dt: None
    monkeypatch.setattr(cp, "has_cxx_compiler", lambda: True)
    assert compiling.compile_possible(f, "rk4", FixedStep(0.1), None, None) == "step callbacks"
    assert compiling.compile_possible(Field(), "rk4", FixedStep(0.1), None, None) is None


def test_auto_equals_eager_and_stays_eager_for_a_short_run(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("a short run must not compile")

    monkeypatch.setattr("odeflow.solvers.compiled._call", boom)
    field, y0, t = Field(), torch.tensor([0.5, -0.2], dtype=D), torch.linspace(0, 1, 5, dtype=D)
    for _ in range(5):
        a = odeflow.solve(field, y0, t, method="rk4", step=FixedStep(0.1), compile="auto")
        b = odeflow.solve(field, y0, t, method="rk4", step=FixedStep(0.1))
        assert torch.equal(a.ys, b.ys) and a.stats.as_dict() == b.stats.as_dict()


def test_auto_falls_back_to_eager_when_f_cannot_be_traced():
    def with_autograd(t, y):  # torch.autograd.grad inside f: not traceable
        with torch.enable_grad():
            y_ = y.detach().requires_grad_(True)
            return torch.autograd.grad((y_**2).sum(), y_, create_graph=True)[0]

    policy = AutoCompile(expected_calls=100, eager_calls=1, cold_cost=0.0)
    y0, t = torch.ones(2, dtype=D), torch.linspace(0, 0.5, 3, dtype=D)
    ref = odeflow.solve(with_autograd, y0, t, method="rk4", step=FixedStep(0.25)).ys
    for _ in range(4):  # call 3 tries to compile, fails, and solves eagerly
        ys = odeflow.solve(with_autograd, y0, t, method="rk4", step=FixedStep(0.25), compile=policy).ys
        torch.testing.assert_close(ys, ref, rtol=0, atol=0)


def test_compile_settings_are_checked():
    assert cp.compile_choice("on") is True and cp.compile_choice("off") is False
    assert cp.compile_choice("auto") == "auto" and cp.compile_choice(True) is True
    with pytest.raises(ValueError, match="auto, on, off"):
        cp.compile_choice("sometimes")
    with pytest.raises(ValueError, match="expected_calls"):
        AutoCompile(expected_calls=-1)
    with pytest.raises(ValueError, match="speedup"):
        AutoCompile(speedup=1.0)
    with pytest.raises(TypeError, match="'auto'"):
        odeflow.solve(Field(), torch.ones(2, dtype=D), [0.0, 1.0], compile="sometimes")


def test_auto_that_compiles_equals_eager(monkeypatch):
    """A policy that compiles as soon as it has timed one call: the compiled calls give the
    eager numbers and gradients."""
    from odeflow.solvers import compiled

    used = []
    real = compiled._call
    monkeypatch.setattr(compiled, "_call", lambda *a: used.append(1) or real(*a))
    torch.manual_seed(0)
    field, t = Field(), torch.linspace(0, 1, 4, dtype=D)
    policy = AutoCompile(expected_calls=100, eager_calls=1, cold_cost=0.0)

    def run(compile):
        field.zero_grad(set_to_none=True)
        y0 = torch.tensor([0.5, -0.2], dtype=D, requires_grad=True)
        sol = odeflow.solve(field, y0, t, method="rk4", step=FixedStep(0.125), compile=compile)
        sol.ys.pow(2).sum().backward()
        return sol.ys.detach(), [y0.grad] + [p.grad.clone() for p in field.parameters()], sol.stats.as_dict()

    for _ in range(5):
        ys, grads, stats = run(policy)
        ys_e, grads_e, stats_e = run(False)
        torch.testing.assert_close(ys, ys_e, rtol=1e-12, atol=1e-12)
        for a, b in zip(grads, grads_e):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
        assert stats == stats_e
    assert used  # it did compile


@pytest.mark.parametrize("method", ["rk4", "leapfrog", "explicit_adams"])
def test_auto_may_compile_fixed_grid_scans(method):
    """Explicit RK, leapfrog and explicit Adams on a FixedStep grid compile (one scan each)."""
    if not cp.has_cxx_compiler():
        pytest.skip("no C++ compiler")
    assert compiling.compile_possible(Field(), method, FixedStep(0.1), None, None) is None
