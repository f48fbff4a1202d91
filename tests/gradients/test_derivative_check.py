import pytest
import torch
from torch import nn

import odeflow
from odeflow.gradients import derivative_check, plot_derivative_check


def quadratic_problem():
    x = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64, requires_grad=True)
    return x, (lambda: (x**3).sum() + (x[0] * x[1]))


def test_correct_gradient_passes():
    x, loss = quadratic_problem()
    check = derivative_check(loss, [x])
    assert check.slope0 == pytest.approx(1.0, abs=0.1)
    assert check.slope1 == pytest.approx(2.0, abs=0.2)
    assert check.passed


def test_wrong_gradient_fails():
    x, loss = quadratic_problem()
    (g,) = torch.autograd.grad(loss(), [x])
    check = derivative_check(loss, [x], grads=[1.05 * g])
    assert check.slope1 == pytest.approx(1.0, abs=0.2)
    assert not check.passed


def test_parameters_are_restored():
    x, loss = quadratic_problem()
    before = x.detach().clone()
    derivative_check(loss, [x])
    assert torch.equal(x.detach(), before)


class Field(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2)).double()

    def forward(self, t, y):
        return self.net(y**3)


def _ode_loss(func, gradient, step, method):
    y0 = torch.tensor([[2.0, 0.0]], dtype=torch.float64)
    t = torch.linspace(0, 1.5, 30, dtype=torch.float64)
    target = torch.zeros(30, 1, 2, dtype=torch.float64)
    return lambda: (odeflow.solve(func, y0, t, method=method, step=step, gradient=gradient).ys - target).pow(2).sum()


def test_discretize_optimize_gradient_passes_the_check():
    func = Field()
    loss = _ode_loss(func, odeflow.DiscretizeOptimize(), odeflow.FixedStep(1.5 / 29), "rk4")
    assert derivative_check(loss, list(func.parameters())).passed


def test_loose_adjoint_gradient_can_fail_the_check_tight_one_passes():
    """Seed 000's finding: an optimize-discretize gradient is only as good as its tolerances."""
    func = Field()
    params = list(func.parameters())
    loose = derivative_check(
        _ode_loss(func, odeflow.OptimizeDiscretize(), odeflow.Adaptive(1e-2, 1e-2), "dopri5"),
        params,
        hs=[2.0**-k for k in range(4, 20)],
    )
    tight = derivative_check(
        _ode_loss(func, odeflow.OptimizeDiscretize(), odeflow.Adaptive(1e-10, 1e-12), "dopri5"), params
    )
    assert not loose.passed
    assert tight.passed


def test_plot(tmp_path):
    x, loss = quadratic_problem()
    path = tmp_path / "check.png"
    plot_derivative_check(derivative_check(loss, [x]), str(path))
    assert path.stat().st_size > 1000
