"""discover.rk4: the classic rk4 step is fourth order, and its control input enters at the step's
start, middle and end."""

import math

import torch

from odeflow.discover.rk4 import rk4_step


def test_fourth_order_on_random_linear_systems():
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        a = torch.randn(3, 3, generator=g, dtype=torch.float64)
        z0 = torch.randn(2, 3, generator=g, dtype=torch.float64)
        exact = z0 @ torch.linalg.matrix_exp(a).T
        errs = []
        for n in (8, 16, 32):
            z = z0
            for _ in range(n):
                z = rk4_step(lambda z_, u: z_ @ a.T, z, 1.0 / n)
            errs.append(float((z - exact).abs().max()))
        slopes = [math.log2(errs[i] / errs[i + 1]) for i in range(2)]
        assert all(3.7 < s < 4.3 for s in slopes), slopes


def test_an_input_linear_in_time_is_integrated_exactly():
    """dz/dt = u(t) with u = a + b t: rk4 (Simpson's rule here) is exact for it."""
    a, b, h = 0.3, -1.7, 0.25
    u = torch.tensor([[a], [a + b * h / 2], [a + b * h]], dtype=torch.float64)
    z = rk4_step(lambda z_, u_: u_.expand_as(z_), torch.zeros(1, dtype=torch.float64), h, u)
    assert abs(float(z) - (a * h + b * h * h / 2)) < 1e-15
