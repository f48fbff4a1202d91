"""The classic fourth-order Runge–Kutta step that discovery's fits integrate with (the neural
fit's shooting windows and the fit on the observations): small batched fields called a few
hundred times per fit, where the solver core's bookkeeping would cost more than the field.

    k1 = g(z, u0), k2 = g(z + h/2 k1, u½), k3 = g(z + h/2 k2, u½), k4 = g(z + h k3, u1)
    z(t + h) = z + h/6 (k1 + 2 k2 + 2 k3 + k4)

u0, u½, u1: control inputs at the step's start, middle and end (None without inputs).
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence, Union

from torch import Tensor

Field = Callable[[Tensor, Optional[Tensor]], Tensor]  # g(z, u)


def rk4_step(
    g: Field, z: Tensor, h: Union[Tensor, float], u: Union[Tensor, Sequence[Optional[Tensor]]] = (None, None, None)
) -> Tensor:
    """One classic rk4 step of dz/dt = g(z, u(t)) of length h (a number or a tensor broadcast over z);
    u: (u0, u½, u1), or a tensor [3, ...] of them."""
    k1 = g(z, u[0])
    k2 = g(z + 0.5 * h * k1, u[1])
    k3 = g(z + 0.5 * h * k2, u[1])
    k4 = g(z + h * k3, u[2])
    return z + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
