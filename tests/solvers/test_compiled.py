"""solve(..., compile=True): same numbers, gradients and statistics as eager mode, one compile
per vector field and shape, and clear errors for what it cannot do."""

import shutil

import pytest
import torch
from torch import nn

import odeflow
from odeflow import Adaptive, DiscretizeOptimize, FixedStep, OptimizeDiscretize

D = torch.float64
# Inductor builds C++; without a compiler compile=True raises a clear error instead (not tested here).
pytestmark = pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None, reason="compile=True needs a C++ compiler"
)


class Field(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2)).to(D)

    def forward(self, t, y):
        return self.net(y) - 0.5 * y * torch.cos(t)


FIELD = Field()
T = torch.linspace(0.0, 1.0, 6, dtype=D)


def _grads(compile, method, step, gradient, y0=None, t=None):
    y0 = torch.tensor([[0.8, -0.3], [0.1, 0.5]], dtype=D) if y0 is None else y0
    y0 = y0.clone().requires_grad_(True)
    t = (T if t is None else t).clone().requires_grad_(True)
    FIELD.zero_grad(set_to_none=True)
    sol = odeflow.solve(FIELD, y0, t, method=method, step=step, gradient=gradient, compile=compile)
    (sol.ys * torch.linspace(-1, 1, sol.ys.numel(), dtype=D).reshape(sol.ys.shape)).sum().backward()
    return sol, [y0.grad, t.grad] + [p.grad for p in FIELD.parameters()]


@pytest.mark.parametrize(
    "method, step, gradient",
    [
        ("rk4", FixedStep(0.1), DiscretizeOptimize()),
        ("dopri5", Adaptive(rtol=1e-6, atol=1e-8), DiscretizeOptimize()),
        ("dopri5", Adaptive(rtol=1e-6, atol=1e-8), OptimizeDiscretize()),
        ("rk4", FixedStep(0.1), OptimizeDiscretize()),
    ],
)
def test_compiled_matches_eager(method, step, gradient):
    eager, g_eager = _grads(False, method, step, gradient)
    comp, g_comp = _grads(True, method, step, gradient)
    torch.testing.assert_close(comp.ys, eager.ys, rtol=1e-10, atol=1e-12)
    for a, b in zip(g_comp, g_eager):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)
    assert comp.stats.as_dict() == eager.stats.as_dict()
    assert comp.stats.nfe > 0


def test_compiled_fixed_grid_tuple_state_and_fsal_method():
    def f(t, state):
        x, v = state
        return v, -x - 0.1 * v

    y0 = (torch.tensor([1.0], dtype=D), torch.tensor([0.0], dtype=D))
    with torch.no_grad():  # the carried derivative: the eager loop's evaluations exactly
        outs = [odeflow.solve(f, y0, T, method="dopri5", step=FixedStep(0.05), compile=c) for c in (False, True)]
    for a, b in zip(outs[1].ys, outs[0].ys):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert outs[1].stats.as_dict() == outs[0].stats.as_dict()


@pytest.mark.parametrize("method", ["tsit5", "dopri5", "bosh3"])
def test_compiled_fixed_grid_gradients_of_fsal_methods(method):
    """Backprop through the compiled scan of a first-same-as-last method equals eager backprop
    (a derivative carried through scan once gave wrong parameter gradients)."""
    eager, g_eager = _grads(False, method, FixedStep(0.1), DiscretizeOptimize())
    comp, g_comp = _grads(True, method, FixedStep(0.1), DiscretizeOptimize())
    torch.testing.assert_close(comp.ys, eager.ys, rtol=1e-10, atol=1e-12)
    for a, b in zip(g_comp, g_eager):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)
    steps = eager.stats.steps
    assert comp.stats.nfe == steps * odeflow.get_method(method).stages  # f(t, y) anew in every step


def test_repeated_solves_do_not_recompile():
    from torch._dynamo.utils import counters

    _grads(True, "rk4", FixedStep(0.1), DiscretizeOptimize())
    before = counters["stats"]["unique_graphs"]
    for _ in range(3):
        # a fresh closure around the same model is the same vector field
        model = FIELD
        sol = odeflow.solve(
            lambda t, y: model(t, y), torch.ones(2, 2, dtype=D), T, method="rk4", step=FixedStep(0.1), compile=True
        )
        sol.ys.sum().backward()
        _grads(True, "rk4", FixedStep(0.1), DiscretizeOptimize())
    assert counters["stats"]["unique_graphs"] - before <= 1  # at most the lambda's own first compile


@pytest.mark.slow  # nine compiles
def test_many_grid_sizes_do_not_exhaust_recompilations():
    # torch.compile allows 8 recompilations of one function; every grid size gets its own copy
    for n in range(3, 12):
        sol = odeflow.solve(
            FIELD,
            torch.ones(2, dtype=D),
            torch.linspace(0, 1, n, dtype=D),
            method="euler",
            step=FixedStep(0.25),
            compile=True,
        )
        assert sol.ys.shape == (n, 2)


def test_compile_rejects_what_it_cannot_trace():
    def with_autograd(t, y):  # like a CNF's divergence: torch.autograd.grad inside f
        with torch.enable_grad():
            y_ = y.detach().requires_grad_(True)
            return torch.autograd.grad((y_**2).sum(), y_, create_graph=True)[0]

    with pytest.raises(ValueError, match="compile=False"):
        odeflow.solve(with_autograd, torch.ones(2, dtype=D), T, method="rk4", step=FixedStep(0.5), compile=True)


def test_compile_argument_errors():
    with pytest.raises(ValueError, match="checkpoint"):
        odeflow.solve(
            FIELD,
            torch.ones(2, dtype=D),
            T,
            method="rk4",
            step=FixedStep(0.1),
            gradient=DiscretizeOptimize(checkpoints=2),
            compile=True,
        )
    with pytest.raises(TypeError, match="compile must be True or False"):
        odeflow.solve(FIELD, torch.ones(2, dtype=D), T, compile="yes")
    w = torch.ones(2, dtype=D, requires_grad=True)
    y0 = torch.ones(2, dtype=D, requires_grad=True)
    sol = odeflow.solve(
        lambda t, y: -w * y,
        y0,
        T,
        method="rk4",
        step=FixedStep(0.1),
        gradient=OptimizeDiscretize(params=[w]),
        compile=True,
    )
    with pytest.raises(ValueError, match="parameters of the nn.Module"):
        sol.ys.sum().backward()


def test_compile_accepts_a_field_class_defined_inside_a_function():
    """Its compiled solver cannot be saved to the cache (torch refuses local classes): it is
    compiled in-process instead of failing."""

    class Local(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(2, 2).to(D)

        def forward(self, t, y):
            return self.lin(y)

    field = Local()
    y0 = torch.tensor([[0.3, -0.2]], dtype=D)
    eager = odeflow.solve(field, y0, T, method="rk4", step=FixedStep(0.25))
    comp = odeflow.solve(field, y0, T, method="rk4", step=FixedStep(0.25), compile=True)
    torch.testing.assert_close(comp.ys, eager.ys, rtol=1e-12, atol=1e-12)


def _ancestors(event):
    names, parent = [], event.cpu_parent
    while parent is not None:
        names.append(parent.name)
        parent = parent.cpu_parent
    return names


def test_compiled_solves_fuse_small_products():
    """Inside the compiled solve, the field's small products (2x2 by 2x16, 2x16 by 16x2, and those of
    their vector-Jacobian products) run in Inductor's own fused loops, not as ATen calls
    (solvers/small_matmul.py); one evaluation of f outside the compiled code stays eager. An ATen
    product called from compiled code shows in the profile as resolve_conj on its operands."""
    gradient = DiscretizeOptimize()
    eager, g_eager = _grads(False, "rk4", FixedStep(0.1), gradient)
    _grads(True, "rk4", FixedStep(0.1), gradient)  # compiles (or reuses) the solver
    with torch.profiler.profile() as prof:
        comp, g_comp = _grads(True, "rk4", FixedStep(0.1), gradient)
    in_compiled = {e.name for e in prof.events() if "CompiledFxGraph" in " ".join(_ancestors(e))}
    assert in_compiled  # the solve ran compiled code
    assert not in_compiled & {"aten::mm", "aten::addmm", "aten::bmm", "aten::resolve_conj"}
    torch.testing.assert_close(comp.ys, eager.ys, rtol=1e-12, atol=1e-12)
    for a, b in zip(g_comp, g_eager):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_compile_accepts_a_field_without_readable_source():
    """A field defined in code with no source file (piped to python, exec'd) cannot be saved to the
    cache (torch reads the source to package it): it is compiled in-process instead of failing."""
    space: dict = {"nn": nn, "torch": torch}
    exec(
        "class NoSource(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.lin = nn.Linear(2, 2).double()\n"
        "    def forward(self, t, y):\n"
        "        return torch.tanh(self.lin(y))\n",
        space,
    )
    field = space["NoSource"]()
    y0 = torch.tensor([[0.3, -0.2]], dtype=D)
    eager = odeflow.solve(field, y0, T, method="rk4", step=FixedStep(0.25))
    comp = odeflow.solve(field, y0, T, method="rk4", step=FixedStep(0.25), compile=True)
    torch.testing.assert_close(comp.ys, eager.ys, rtol=1e-12, atol=1e-12)


def test_the_wrapper_is_built_apart_from_the_kernels():
    """odeflow's compiles use Inductor's C++ wrapper built apart from the kernels (the wrapper at
    -O1, kernels at -O3) where torch offers it: one translation unit at -O3 took g++ 498 CPU s on a
    CNF training step (benchmarks/RESULTS.md). Every compiled-against-eager test above runs with it."""
    from torch._inductor import config

    from odeflow.solvers.compiled import inductor_options

    options = inductor_options()
    assert options["cpp_wrapper"] is True
    assert options.get("cpp_wrapper_build_separate", False) is hasattr(config, "cpp_wrapper_build_separate")
    for name in options:  # every option exists in this torch (a typo would be ignored silently otherwise)
        assert hasattr(config, name)


class Separable(nn.Module):
    """H(q, p) = |p|^2 / 2 + V(q) with a random network potential gradient: f = (p, -dV/dq)."""

    def __init__(self, half: int, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.grad_v = nn.Sequential(nn.Linear(half, 8), nn.Tanh(), nn.Linear(8, half)).to(D)
        self.half = half

    def forward(self, t, y):
        q, p = y[..., : self.half], y[..., self.half :]
        return torch.cat([p, -self.grad_v(q) * (1 + 0.1 * torch.sin(t))], dim=-1)


def test_compiled_leapfrog_matches_eager_values_gradients_and_evaluations():
    """Leapfrog on a fixed grid compiles to one scan: equal to the eager method in values (1e-12) and
    in parameter, initial-state and time gradients (1e-10), on a random separable field and times;
    without gradients it also makes the same evaluations (the closing kick is carried)."""
    gen = torch.Generator().manual_seed(7)
    half = int(torch.randint(1, 4, (1,), generator=gen))
    field = Separable(half, seed=int(torch.randint(0, 1000, (1,), generator=gen)))
    y0 = torch.randn(3, 2 * half, generator=gen, dtype=D)
    t = torch.cat([torch.zeros(1, dtype=D), torch.rand(4, generator=gen, dtype=D).cumsum(0)])
    step = FixedStep(0.1)
    with torch.no_grad():
        eager = odeflow.solve(field, y0, t, method="leapfrog", step=step)
        comp = odeflow.solve(field, y0, t, method="leapfrog", step=step, compile=True)
    torch.testing.assert_close(comp.ys, eager.ys, rtol=1e-12, atol=1e-12)
    assert comp.stats.nfe == eager.stats.nfe and comp.stats.accepted == eager.stats.accepted

    def grads(compile):
        field.zero_grad(set_to_none=True)
        y, tt = y0.clone().requires_grad_(True), t.clone().requires_grad_(True)
        sol = odeflow.solve(field, y, tt, method="leapfrog", step=step, compile=compile)
        (sol.ys * torch.linspace(-1, 1, sol.ys.numel(), dtype=D).reshape(sol.ys.shape)).sum().backward()
        return sol.ys, [y.grad, tt.grad] + [p.grad for p in field.parameters()]

    ys_e, g_e = grads(False)
    ys_c, g_c = grads(True)
    torch.testing.assert_close(ys_c, ys_e, rtol=1e-12, atol=1e-12)
    for a, b in zip(g_c, g_e):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="two equal halves"):
        odeflow.solve(field, torch.zeros(1, 3, dtype=D), t, method="leapfrog", step=step, compile=True)


def test_compiled_explicit_adams_matches_eager_values_gradients_and_evaluations():
    """Explicit Adams on a fixed grid compiles (start-up steps with a growing history unrolled, the
    rest one scan carrying the history): equal to the eager method in values (1e-12), evaluations
    and steps, and in parameter, initial-state and time gradients (1e-10), on a random field,
    random output times and a random maximum order."""
    from odeflow.solvers.adams import Adams

    gen = torch.Generator().manual_seed(11)
    method = Adams(implicit=False, max_order=int(torch.randint(4, 7, (1,), generator=gen)))
    field = Field()
    y0 = torch.randn(2, 2, generator=gen, dtype=D)
    t = torch.cat([torch.zeros(1, dtype=D), torch.rand(3, generator=gen, dtype=D).cumsum(0)])
    step = FixedStep(0.1)
    with torch.no_grad():
        eager = odeflow.solve(field, y0, t, method=method, step=step)
        comp = odeflow.solve(field, y0, t, method=method, step=step, compile=True)
    torch.testing.assert_close(comp.ys, eager.ys, rtol=1e-12, atol=1e-12)
    assert (comp.stats.nfe, comp.stats.accepted) == (eager.stats.nfe, eager.stats.accepted)

    def grads(compile):
        field.zero_grad(set_to_none=True)
        y, tt = y0.clone().requires_grad_(True), t.clone().requires_grad_(True)
        sol = odeflow.solve(field, y, tt, method=method, step=step, compile=compile)
        (sol.ys * torch.linspace(-1, 1, sol.ys.numel(), dtype=D).reshape(sol.ys.shape)).sum().backward()
        return sol, [y.grad, tt.grad] + [p.grad for p in field.parameters()]

    sol_e, g_e = grads(False)
    sol_c, g_c = grads(True)
    torch.testing.assert_close(sol_c.ys, sol_e.ys, rtol=1e-12, atol=1e-12)
    assert sol_c.stats.nfe == sol_e.stats.nfe
    for a, b in zip(g_c, g_e):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="explicit_adams"):
        odeflow.solve(field, y0, t, method="implicit_adams", step=step, compile=True)
