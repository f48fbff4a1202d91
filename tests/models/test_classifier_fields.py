"""Fields of the classifiers: second-order dynamics as a first-order system."""

import pytest
import torch

from odeflow import FixedStep
from odeflow.models.classifier_fields import MLPField, SecondOrder
from odeflow.models.ode_block import ODEBlock


def test_second_order_with_constant_acceleration():
    """d²h/dt² = a (field weights zero, bias a), v(0) = 0: h(T) = h0 + a T²/2 (rk4 is exact)."""
    accel = MLPField(4, 2, hidden=(3,)).double()
    for p in accel.parameters():
        torch.nn.init.zeros_(p)
    a = torch.tensor([0.3, -1.2], dtype=torch.float64)
    with torch.no_grad():
        accel.layers[-1].linear.bias.copy_(a)
    block = ODEBlock(SecondOrder(accel), T=2.0, method="rk4", step=FixedStep(steps=3))
    h0 = torch.randn(5, 2, dtype=torch.float64)
    (hT, vT), _ = block((h0, torch.zeros_like(h0)))
    torch.testing.assert_close(hT, h0 + a * 2.0**2 / 2, rtol=0, atol=1e-12)
    torch.testing.assert_close(vT, (a * 2.0).expand_as(vT), rtol=0, atol=1e-12)


def test_second_order_field_checks_widths():
    with pytest.raises(ValueError, match="twice"):
        SecondOrder(MLPField(4, 4))
