"""Adams–Bashforth / Adams–Moulton coefficients and the variable-order methods."""

import pytest
import torch

import odeflow
from odeflow.solvers.adams import Adams, bashforth, moulton
from odeflow.solvers.times import StepTimes


def test_coefficients_are_the_textbook_ones():
    assert bashforth(1) == (1.0,)
    assert bashforth(2) == (1.5, -0.5)
    assert [round(c * 24, 10) for c in bashforth(4)] == [55, -59, 37, -9]
    assert [round(c * 720, 9) for c in moulton(5)] == [251, 646, -264, 106, -19]
    for k in range(1, 13):
        assert sum(bashforth(k)) == pytest.approx(1.0, abs=1e-12)
        assert sum(moulton(k)) == pytest.approx(1.0, abs=1e-12)


def test_implicit_adams_reaches_high_order_after_start_up():
    """On y' = -y with h = 0.02 the variable-order predictor–corrector reaches ~1e-10 accuracy."""
    t = torch.linspace(0, 2, 3, dtype=torch.float64)
    sol = odeflow.solve(
        lambda t, y: -y,
        torch.ones(1, dtype=torch.float64),
        t,
        method=Adams(implicit=True),
        step=odeflow.FixedStep(0.02),
    )
    assert float((sol.ys[:, 0] - torch.exp(-t)).abs().max()) < 1e-9


def test_explicit_adams_of_order_eleven_is_unstable_at_this_step_like_torchdiffeq():
    """The order grows to 11, whose Adams–Bashforth stability region is tiny: y' = -y, h = 0.02
    blows up in torchdiffeq too, with the same numbers."""
    torchdiffeq = pytest.importorskip("torchdiffeq")
    t = torch.linspace(0, 2, 3, dtype=torch.float64)
    y0 = torch.ones(1, dtype=torch.float64)
    ours = odeflow.odeint(lambda t, y: -y, y0, t, method="explicit_adams", options=dict(step_size=0.02))
    theirs = torchdiffeq.odeint(lambda t, y: -y, y0, t, method="explicit_adams", options=dict(step_size=0.02))
    assert float(ours[-1].abs()) > 1e3 and torch.allclose(ours, theirs, rtol=1e-6)


def test_max_order_below_four_warns_and_is_rk4():
    with pytest.warns(UserWarning, match="max_order"):
        m = Adams(max_order=3)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    a = odeflow.solve(lambda t, y: -y, torch.ones(1, dtype=torch.float64), t, method=m, step=odeflow.FixedStep(0.1)).ys
    b = odeflow.solve(
        lambda t, y: -y, torch.ones(1, dtype=torch.float64), t, method="rk4_38", step=odeflow.FixedStep(0.1)
    ).ys
    assert torch.allclose(a, b, atol=1e-15)


def _interpolant_errors(implicit: bool, h: float):
    """Largest |y(theta = 1) - y_{n+1}| and mid-step error of the Adams interpolant on y' = -y."""
    import math

    method = Adams(implicit=implicit, max_order=5)
    times = StepTimes(torch.float64, torch.device("cpu"))
    y, t, end_gap, mid, carry = torch.ones(1, dtype=torch.float64), 0.0, 0.0, 0.0, None
    for k in range(int(round(1.0 / h))):
        res = method.step(lambda t, y: -y, None, y, carry, t, h, t + h, times)
        y1, carry = res.y1, res.carry()
        end_gap = max(end_gap, float((res.dense.at(1.0) - y1).abs()))
        if k >= 2:  # after the RK4 start-up steps (cubic Hermite there)
            mid = max(mid, abs(res.dense.at(0.5).item() - math.exp(-(t + h / 2))))
        y, t = y1, t + h
    return end_gap, mid


@pytest.mark.parametrize("implicit", [False, True])
def test_adams_interpolant_ends_on_the_step_and_converges(implicit):
    """The Adams step's own polynomial (used to locate events) is y_{n+1} at theta = 1, and its
    mid-step error falls at least like h^3 (measured at h = 0.1 -> 0.05: 14x explicit, 27x implicit)."""
    gap_a, mid_a = _interpolant_errors(implicit, 0.1)
    gap_b, mid_b = _interpolant_errors(implicit, 0.05)
    assert gap_a < 1e-15 and gap_b < 1e-15
    assert mid_b < mid_a / 8 and mid_a < 1e-4
