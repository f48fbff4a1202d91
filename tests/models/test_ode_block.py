"""ODE block and its ResNet twin: the RNODE kinetic energy."""

import torch

from odeflow import Adaptive, FixedStep
from odeflow.models.classifier_fields import ConvField, MLPField
from odeflow.models.ode_block import EulerStack, ODEBlock


def test_kinetic_energy_matches_euler_sum():
    """E(T) from the solver's augmented state = sum_k dt 0.5 mean(f(t_k, h_k)^2) of the ResNet twin."""
    field = ConvField(8).double()
    h = torch.randn(3, 8, 4, 4, dtype=torch.float64)
    ode = ODEBlock(field, T=1.0, method="euler", step=FixedStep(steps=4), kinetic=0.1)
    res = EulerStack(field, steps=4, T=1.0, kinetic=0.1)
    (hT, e_ode), (hR, e_res) = ode(h, regularize=True), res(h, regularize=True)
    assert e_ode.shape == (3,) and bool((e_ode > 0).all())
    torch.testing.assert_close(e_ode, e_res, rtol=1e-12, atol=0)
    torch.testing.assert_close(hT, hR, rtol=1e-12, atol=0)
    assert ode(h)[1] is None  # no regularizer outside training


def test_kinetic_is_left_out_of_the_error_norm():
    """With the energy state excluded, adaptive NFE does not change when lambda_K is switched on."""
    field = MLPField(2, 2, hidden=(16,), activation="tanh").double()
    h = torch.randn(20, 2, dtype=torch.float64)
    plain = ODEBlock(field, method="dopri5", step=Adaptive(1e-6, 1e-6))
    reg = ODEBlock(field, method="dopri5", step=Adaptive(1e-6, 1e-6), kinetic=1.0)
    plain(h)
    reg(h, regularize=True)
    assert reg.last_stats.nfe == plain.last_stats.nfe
