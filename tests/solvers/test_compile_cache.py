"""Compiled solvers kept on disk: the cache directory setting, fingerprints that tell problems
apart across processes, and a solve that loads its compiled solver instead of compiling."""

import shutil
import threading
from pathlib import Path

import pytest
import torch
from torch import nn

import odeflow
from odeflow import FixedStep
from odeflow.solvers import compile_cache, compiled, compiled_grid

D = torch.float64


def test_cache_dir_setting(tmp_path, monkeypatch):
    monkeypatch.delenv("ODEFLOW_CACHE_DIR", raising=False)
    assert compile_cache.cache_dir() == Path.home() / ".cache" / "odeflow"
    monkeypatch.setenv("ODEFLOW_CACHE_DIR", str(tmp_path / "env"))
    assert compile_cache.cache_dir() == tmp_path / "env"
    odeflow.set_cache_dir(tmp_path / "set")
    try:
        assert odeflow.cache_dir() == tmp_path / "set"
        assert compile_cache.entry_path("abc") == tmp_path / "set" / "compiled" / "abc.bin"
    finally:
        odeflow.set_cache_dir(None)
    assert compile_cache.cache_dir() == tmp_path / "env"
    with pytest.raises(TypeError, match="path or None"):
        odeflow.set_cache_dir(3)


def test_inductor_cache_follows_the_odeflow_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ODEFLOW_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(compile_cache, "_USER_INDUCTOR_DIR", None)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/somewhere/else")  # e.g. set by Inductor itself
    with compile_cache.inductor_cache_env():
        import os

        assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "inductor")
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == "/somewhere/else"
    monkeypatch.setattr(compile_cache, "_USER_INDUCTOR_DIR", "/users/choice")
    with compile_cache.inductor_cache_env():
        assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == "/users/choice"


class MLP(nn.Module):
    def __init__(self, width: int = 8, scale: float = 1.0) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, width), nn.Tanh(), nn.Linear(width, 2)).to(D)
        self.scale = scale

    def forward(self, t, y):
        return self.scale * self.net(y)


class Other(MLP):
    def forward(self, t, y):
        return -self.scale * self.net(y)


def _fp(f, *args):
    return compile_cache.fingerprint(compiled_grid.grid_solve, [f, *args])


def test_fingerprint_is_stable_and_tells_problems_apart():
    y = torch.zeros(3, 2, dtype=D)
    torch.manual_seed(0)
    a = MLP()
    torch.manual_seed(1)
    b = MLP()  # other parameter values, same structure: the compiled code reads them as inputs
    assert _fp(a, y) == _fp(b, y)
    assert _fp(a, y) != _fp(MLP(width=9), y)  # parameter shapes
    assert _fp(a, y) != _fp(MLP(scale=2.0), y)  # a constant baked into the graph
    assert _fp(a, y) != _fp(Other(), y)  # the forward's code
    assert _fp(a, y) != _fp(a, torch.zeros(4, 2, dtype=D))
    assert _fp(a, y) != _fp(a, y.float())
    assert _fp(a, y) != _fp(a, y.requires_grad_())
    k = 2.0
    f1 = lambda t, x: k * x  # noqa: E731
    f2 = lambda t, x: k * x + 1  # noqa: E731
    assert _fp(f1, y) != _fp(f2, y)
    with pytest.raises(compile_cache.Unfingerprintable):
        _fp(threading.Lock(), y)


needs_compiler = pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None, reason="compile=True needs a C++ compiler"
)


@needs_compiler
def test_a_new_process_loads_the_compiled_solver_instead_of_compiling(tmp_path, monkeypatch):
    """The in-process table is cleared (as in a new process): the solve reads the file written by
    the first compile and gives the same numbers; compiling again would raise here."""
    monkeypatch.setenv("ODEFLOW_CACHE_DIR", str(tmp_path))
    torch.manual_seed(0)
    field, y0, t = MLP(), torch.tensor([[0.3, -0.1]], dtype=D), torch.linspace(0, 1, 4, dtype=D)

    def run():
        field.zero_grad(set_to_none=True)
        sol = odeflow.solve(field, y0, t, method="rk4", step=FixedStep(0.125), compile=True)
        sol.ys.pow(2).sum().backward()
        return sol.ys.detach(), [p.grad.clone() for p in field.parameters()]

    eager = odeflow.solve(field, y0, t, method="rk4", step=FixedStep(0.125)).ys
    ys, grads = run()
    torch.testing.assert_close(ys, eager, rtol=1e-12, atol=1e-12)
    assert len(list((tmp_path / "compiled").glob("*.bin"))) == 1
    assert (tmp_path / "inductor").is_dir()

    obtain = compiled._obtain
    monkeypatch.setattr(compiled, "_obtain", lambda *a: pytest.fail("the same problem compiled or loaded again"))
    torch.testing.assert_close(run()[0], ys, rtol=0, atol=0)  # in-process: the variant already there
    monkeypatch.setattr(compiled, "_obtain", obtain)

    compiled._VARIANTS.clear()
    monkeypatch.setattr(compile_cache, "aot_compile", lambda *a, **k: pytest.fail("compiled again"))
    with torch.no_grad():  # changed parameters reach the loaded solver (they are inputs, not constants)
        for p in field.parameters():
            p.mul_(0.9)
    eager2 = odeflow.solve(field, y0, t, method="rk4", step=FixedStep(0.125)).ys
    ys2, grads2 = run()
    torch.testing.assert_close(ys2, eager2, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(ys2, ys)


def test_compiled_solvers_are_not_loaded_from_a_shared_folder(tmp_path):
    from odeflow.solvers import compile_cache

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    planted = shared / "x.bin"
    planted.write_bytes(b"not a compiled solver")
    assert not compile_cache.private(shared)
    assert compile_cache.load(planted, lambda: None) is None
    shared.chmod(0o700)
    assert compile_cache.private(shared)


def test_a_torch_that_cannot_save_compiled_functions_compiles_in_process(monkeypatch):
    """torch < 2.12 has no aot_compile/load_compiled_function: compile=True must still work."""
    from odeflow.solvers import compile_cache, compiled

    monkeypatch.setattr(compile_cache, "supported", lambda: False)
    calls = []
    monkeypatch.setattr(compiled, "_compiled", lambda fn, key: calls.append(key) or fn)
    monkeypatch.setattr(compile_cache, "aot_compile", lambda *a: pytest.fail("aot_compile called"))
    fn = compiled._obtain(lambda x: x + 1, ("k",), (torch.zeros(2),))
    assert calls == [("k",)] and torch.equal(fn(torch.zeros(2)), torch.ones(2))
