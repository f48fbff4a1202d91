import math

import pytest
import torch
from torch import nn

import odeflow
from odeflow import SolverError

TIGHT = odeflow.Adaptive(rtol=1e-11, atol=1e-12)
MODES = {
    "disc-opt": lambda: odeflow.DiscretizeOptimize(),
    "opt-disc": lambda: odeflow.OptimizeDiscretize(params=None),
}


class Decay(nn.Module):
    """y' = -a y: y(T) = y0 exp(-a (T - t0))."""

    def __init__(self, a):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a, dtype=torch.float64))

    def forward(self, t, y):
        return -self.a * y


@pytest.mark.parametrize("mode", sorted(MODES))
def test_closed_form_gradients_decay(mode):
    func = Decay(0.7)
    y0 = torch.tensor([1.3], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.2, 1.5], dtype=torch.float64, requires_grad=True)
    sol = odeflow.solve(func, y0, t, step=TIGHT, gradient=MODES[mode]())
    g_y0, g_a, g_t = torch.autograd.grad(sol.ys[-1].sum(), [y0, func.a, t])
    a, y, dt = 0.7, 1.3, 1.3
    e = math.exp(-a * dt)
    assert g_y0.item() == pytest.approx(e, rel=1e-9)
    assert g_a.item() == pytest.approx(-dt * y * e, rel=1e-8)
    assert g_t[1].item() == pytest.approx(-a * y * e, rel=1e-8)
    assert g_t[0].item() == pytest.approx(a * y * e, rel=1e-8)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_closed_form_gradients_linear_system(mode):
    """y' = M y: dL/dy0 = exp(M T)^T w for L = w . y(T); dL/dT = w . M y(T)."""
    M = torch.tensor([[-0.3, 1.0], [-1.0, -0.2]], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([0.4, -1.1], dtype=torch.float64)
    y0 = torch.tensor([1.0, 0.5], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 2.0], dtype=torch.float64, requires_grad=True)
    grad = odeflow.OptimizeDiscretize(params=[M]) if mode == "opt-disc" else odeflow.DiscretizeOptimize()
    sol = odeflow.solve(lambda t, y: M @ y, y0, t, step=TIGHT, gradient=grad)
    g_y0, g_M, g_t = torch.autograd.grad(w @ sol.ys[-1], [y0, M, t])
    Phi = torch.linalg.matrix_exp(M.detach() * 2.0)
    assert torch.allclose(g_y0, Phi.T @ w, rtol=1e-8)
    assert g_t[1].item() == pytest.approx(float(w @ (M.detach() @ (Phi @ y0.detach()))), rel=1e-8)
    # dL/dM by the Fréchet derivative of the matrix exponential (block-matrix identity).
    Mb = torch.zeros(4, 4, dtype=torch.float64)
    Mb[:2, :2] = Mb[2:, 2:] = M.detach() * 2.0
    expected = torch.zeros(2, 2, dtype=torch.float64)
    for i in range(2):
        for j in range(2):
            E = torch.zeros(2, 2, dtype=torch.float64)
            E[i, j] = 2.0
            Mb[:2, 2:] = E
            dPhi = torch.linalg.matrix_exp(Mb)[:2, 2:]
            expected[i, j] = w @ (dPhi @ y0.detach())
    assert torch.allclose(g_M, expected, rtol=1e-7, atol=1e-10)


class MLPField(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2)).double()

    def forward(self, t, y):
        return self.net(y) * torch.cos(t)


def _loss_and_grads(func, y0, t, gradient, step=TIGHT):
    sol = odeflow.solve(func, y0, t, step=step, gradient=gradient)
    loss = (sol.ys * torch.linspace(0.5, 1.5, len(t), dtype=torch.float64).reshape(-1, 1, 1)).pow(2).sum()
    return loss, torch.autograd.grad(loss, [y0, t, *func.parameters()])


def test_mlp_modes_agree_with_each_other_and_finite_differences():
    func = MLPField()
    y0 = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 0.3, 0.8, 1.2], dtype=torch.float64, requires_grad=True)
    _, g_do = _loss_and_grads(func, y0, t, odeflow.DiscretizeOptimize())
    _, g_od = _loss_and_grads(func, y0, t, odeflow.OptimizeDiscretize())
    for a, b in zip(g_do, g_od):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-8)
    # central finite differences along random directions, for y0, t and the parameters
    leaves = [y0, t, *func.parameters()]
    for k, leaf in enumerate(leaves):
        v = torch.randn_like(leaf)
        eps = 1e-5
        with torch.no_grad():
            leaf += eps * v
            fp = _loss_nograd(func, y0, t)
            leaf -= 2 * eps * v
            fm = _loss_nograd(func, y0, t)
            leaf += eps * v
        fd = (fp - fm) / (2 * eps)
        assert float((g_od[k] * v).sum()) == pytest.approx(fd, rel=1e-5, abs=1e-7)


def _loss_nograd(func, y0, t):
    sol = odeflow.solve(func, y0.detach(), t.detach(), step=TIGHT)
    loss = (sol.ys * torch.linspace(0.5, 1.5, len(t), dtype=torch.float64).reshape(-1, 1, 1)).pow(2).sum()
    return float(loss)


def test_tuple_state_gradients_agree():
    func = MLPField()

    def f(t, s):
        x, q = s
        dx = func(t, x)
        return dx, (dx**2).sum(dim=1, keepdim=True)

    x0 = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    q0 = torch.zeros(3, 1, dtype=torch.float64)
    t = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    grads = []
    for grad in (odeflow.DiscretizeOptimize(), odeflow.OptimizeDiscretize(params=list(func.parameters()))):
        xs, qs = odeflow.solve(f, (x0, q0), t, step=TIGHT, gradient=grad).ys
        grads.append(torch.autograd.grad(xs.pow(2).sum() + qs[-1].sum(), [x0, *func.parameters()]))
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-9)


def test_adjoint_error_shrinks_with_tolerance():
    func = MLPField()
    y0 = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 2.0], dtype=torch.float64, requires_grad=True)
    _, ref = _loss_and_grads(func, y0, t, odeflow.DiscretizeOptimize(), odeflow.Adaptive(1e-12, 1e-13))
    errors = []
    for tol in (1e-3, 1e-5, 1e-7, 1e-9):
        _, g = _loss_and_grads(func, y0, t, odeflow.OptimizeDiscretize(), odeflow.Adaptive(tol, tol))
        errors.append(max(float((a - b).abs().max()) for a, b in zip(g, ref)))
    assert all(b < a for a, b in zip(errors, errors[1:])), errors


def test_seminorm_reduces_backward_nfe():
    torch.manual_seed(1)
    func = MLPField()
    y0 = torch.randn(16, 2, dtype=torch.float64)
    t = torch.tensor([0.0, 3.0], dtype=torch.float64)
    nfe = {}
    for seminorm in (False, True):
        sol = odeflow.solve(
            func, y0, t, step=odeflow.Adaptive(1e-6, 1e-8), gradient=odeflow.OptimizeDiscretize(seminorm=seminorm)
        )
        sol.ys[-1].pow(2).sum().backward()
        nfe[seminorm] = sol.stats.nfe_backward
    assert nfe[True] < nfe[False], nfe


def test_step_size_carries_over_output_times():
    """Many output times do not multiply the backward work: no restart of step selection."""
    func = MLPField()
    y0 = torch.randn(4, 2, dtype=torch.float64)
    counts = []
    for n in (2, 41):
        t = torch.linspace(0, 2, n, dtype=torch.float64)
        sol = odeflow.solve(func, y0, t, step=odeflow.Adaptive(1e-6, 1e-8), gradient=odeflow.OptimizeDiscretize())
        sol.ys.pow(2).sum().backward()
        counts.append(sol.stats.steps_backward)
    assert counts[1] < 41 + 2 * counts[0], counts


def test_plain_function_without_params_is_an_error():
    a = torch.tensor(0.5, requires_grad=True)
    with pytest.raises(TypeError, match="not an nn.Module"):
        odeflow.solve(
            lambda t, y: -a * y, torch.ones(2), torch.tensor([0.0, 1.0]), gradient=odeflow.OptimizeDiscretize()
        )
    with pytest.raises(ValueError, match="adjoint_params"):  # torchdiffeq raises ValueError here too
        odeflow.odeint_adjoint(lambda t, y: -a * y, torch.ones(2), torch.tensor([0.0, 1.0]))


@pytest.mark.parametrize("mode", sorted(MODES))
def test_failed_solve_raises_instead_of_nan_gradients(mode):
    class Blow(nn.Module):
        def __init__(self):
            super().__init__()
            self.p = nn.Parameter(torch.tensor(1.0, dtype=torch.float64))

        def forward(self, t, y):
            return self.p * y**2

    with pytest.raises(SolverError):
        sol = odeflow.solve(
            Blow(),
            torch.ones(1, dtype=torch.float64),
            torch.tensor([0.0, 2.0]),
            step=odeflow.Adaptive(1e-6, 1e-8),
            gradient=MODES[mode](),
        )
        sol.ys.sum().backward()


def test_backward_nfe_reported_separately():
    func = MLPField()
    sol = odeflow.solve(
        func,
        torch.randn(2, 2, dtype=torch.float64),
        torch.tensor([0.0, 1.0]),
        step=odeflow.Adaptive(1e-6, 1e-8),
        gradient=odeflow.OptimizeDiscretize(),
    )
    forward = sol.stats.nfe
    assert sol.stats.nfe_backward == 0
    sol.ys.sum().backward()
    assert sol.stats.nfe == forward and sol.stats.nfe_backward > 0
