"""The adaptive solve as one compiled tensor program (solvers/tensor_loop.py): the same steps and
values as the eager loop on random systems, both directions in time, jumps at output times, and
the eager loop's errors; used by the adjoint's forward and backward solves under compile=True."""

import shutil

import pytest
import torch
from torch import nn

import odeflow
from odeflow.solvers import tensor_loop
from odeflow.solvers.errors import SolverError
from odeflow.solvers.loop import integrate_adaptive
from odeflow.solvers.methods import get_method
from odeflow.solvers.solution import SolverStats
from odeflow.solvers.state import ErrorNorm, StatePacker
from odeflow.solvers.stepping import Adaptive

D = torch.float64
pytestmark = pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None, reason="compile=True needs a C++ compiler"
)


class RandomField(nn.Module):
    """y' = tanh(W1 y + b) W2 + A y + sin(t) y: one module whose weights are redrawn per instance
    (the compiled loop takes them as inputs, so a new draw does not recompile)."""

    def __init__(self, d: int = 3) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.zeros(d, 8, dtype=D))
        self.w2 = nn.Parameter(torch.zeros(8, d, dtype=D))
        self.a = nn.Parameter(torch.zeros(d, d, dtype=D))

    def redraw(self, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g, dtype=D) * 0.7)
            self.a -= torch.eye(self.a.shape[0], dtype=D) * 0.5  # mostly contracting, sometimes not

    def forward(self, t, y):
        return torch.tanh(y @ self.w1) @ self.w2 + y @ self.a + torch.sin(t) * y


FIELD = RandomField()


def _both(method: str, seed: int, t, ctrl: Adaptive):
    FIELD.redraw(seed)
    y0 = torch.randn(4, 3, generator=torch.Generator().manual_seed(seed + 1), dtype=D)
    norm = ErrorNorm(StatePacker(y0), ctrl.rtol, ctrl.atol)
    tab = get_method(method)
    with torch.no_grad():
        s_eager, s_loop = SolverStats(), SolverStats()
        outs, h_eager = integrate_adaptive(tab, FIELD, y0, t.tolist(), ctrl, norm, s_eager, h0=0.05)
        ys, h_loop = tensor_loop.integrate_adaptive_tensor(tab, FIELD, y0, t, ctrl, norm, s_loop, 0.05, key=("test",))
    return torch.stack(outs), ys, s_eager, s_loop, h_eager, h_loop


@pytest.mark.parametrize("seed", range(4))
def test_same_steps_and_values_as_the_eager_loop(seed):
    """Random systems, random output times forwards or backwards: identical step counts, values
    within rounding (the loop's arithmetic differs from the eager one only in summation order)."""
    g = torch.Generator().manual_seed(100 + seed)
    t = torch.sort(torch.rand(7, generator=g, dtype=D) * 3).values
    if seed % 2:
        t = t.flip(0)
    eager, ys, s_eager, s_loop, h_eager, h_loop = _both("dopri5", seed, t, Adaptive(rtol=1e-7, atol=1e-9))
    assert (s_loop.accepted, s_loop.rejected) == (s_eager.accepted, s_eager.rejected)
    torch.testing.assert_close(ys, eager, rtol=1e-9, atol=1e-11)
    assert h_loop == pytest.approx(h_eager, rel=1e-6)


@pytest.mark.slow  # one compile per method
@pytest.mark.parametrize("method", ["tsit5", "bosh3", "dopri8", "fehlberg2"])
def test_other_methods_match_the_eager_loop(method):
    t = torch.linspace(0.0, 2.0, 5, dtype=D)
    if not tensor_loop.supported(get_method(method), Adaptive(), t, land_on_outputs=False):
        pytest.skip(f"{method}: no output rule for the tensor loop (the eager loop runs it)")
    eager, ys, s_eager, s_loop, _, _ = _both(method, 7, t, Adaptive(rtol=1e-6, atol=1e-8))
    assert (s_loop.accepted, s_loop.rejected) == (s_eager.accepted, s_eager.rejected)
    torch.testing.assert_close(ys, eager, rtol=1e-9, atol=1e-11)


def test_max_steps_raises_the_eager_loops_error():
    with pytest.raises(SolverError, match="max_steps=3"):
        _both("dopri5", 0, torch.linspace(0.0, 5.0, 3, dtype=D), Adaptive(rtol=1e-9, atol=1e-11, max_steps=3))


def test_compiled_adjoint_matches_eager_adjoint_on_random_systems():
    """The adjoint under compile=True (forward and backward solve each one program) gives the
    eager adjoint's gradients, statistics included, for several random fields."""
    t = torch.linspace(0.0, 1.5, 6, dtype=D)
    for seed in range(3):
        FIELD.redraw(seed)
        grads = []
        for compile in (False, True):
            y0 = torch.randn(4, 3, generator=torch.Generator().manual_seed(seed), dtype=D).requires_grad_(True)
            FIELD.zero_grad(set_to_none=True)
            sol = odeflow.solve(
                FIELD,
                y0,
                t,
                method="dopri5",
                step=Adaptive(rtol=1e-7, atol=1e-9),
                gradient=odeflow.OptimizeDiscretize(),
                compile=compile,
            )
            (sol.ys * torch.linspace(-1, 1, sol.ys.numel(), dtype=D).reshape(sol.ys.shape)).sum().backward()
            grads.append(([y0.grad] + [p.grad for p in FIELD.parameters()], sol.stats.as_dict()))
        (g_eager, stats_eager), (g_comp, stats_comp) = grads
        for a, b in zip(g_comp, g_eager):
            torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)
        # The eager loop evaluates f(t_i, y) anew when the first step after a jump is rejected;
        # the compiled loop keeps that derivative, so it may make fewer backward evaluations.
        back_comp, back_eager = stats_comp.pop("nfe_backward"), stats_eager.pop("nfe_backward")
        assert stats_comp == stats_eager
        assert back_eager - 2 * (len(t) - 2) <= back_comp <= back_eager


def test_supported_leaves_step_t_and_complex_states_to_the_eager_loop():
    tab = get_method("dopri5")
    y = torch.zeros(2, dtype=D)
    assert tensor_loop.supported(tab, Adaptive(), y, land_on_outputs=False)
    assert not tensor_loop.supported(tab, Adaptive(step_t=(0.5,)), y, land_on_outputs=False)
    # per-component tolerances or weights (a CNF's (z, logp)): the per-attempt compiled path
    assert not tensor_loop.supported(tab, Adaptive(rtol=[1e-5, 1e-3]), y, land_on_outputs=False)
    assert not tensor_loop.supported(tab, Adaptive(weights=[1.0, 0.0]), y, land_on_outputs=False)
    assert not tensor_loop.supported(tab, Adaptive(), y.to(torch.complex128), land_on_outputs=False)
    # heun: no continuous extension, no carried derivative: outputs need the eager loop's Hermite
    assert not tensor_loop.supported(get_method("heun"), Adaptive(), y, land_on_outputs=False)
    assert tensor_loop.supported(get_method("heun"), Adaptive(), y, land_on_outputs=True)
