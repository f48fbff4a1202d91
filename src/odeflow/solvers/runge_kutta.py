"""One explicit Runge–Kutta step and the dense output between two accepted steps.

    k_i = f(t + c_i h, y + h sum_j a_ij k_j),  y1 = y + h sum_i b_i k_i,  err = h sum_i e_i k_i.

Linear combinations skip zero coefficients and use fused `add(alpha=)` when h is a plain
float, so the per-step work is only the stages themselves.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple, Union, cast

import torch
from torch import Tensor

from .tableau import ButcherTableau

Step = Union[float, Tensor]
LOW_PRECISION = (torch.float32, torch.float16, torch.bfloat16, torch.complex64)


def combine(
    y: Optional[Tensor], ks: Sequence[Tensor], coeffs: Sequence[float], h: Step, increment_first: bool = False
) -> Tensor:
    """y + h * sum_j coeffs[j] * ks[j] (y may be None, meaning 0). ``increment_first``: sum the
    increment, then add it to y once (one rounding at |y| instead of one per term: used for the
    step's result, where the roundings would add up over the steps)."""
    terms = [(k, c) for k, c in zip(ks, coeffs) if c != 0.0]
    if isinstance(h, Tensor):
        acc = terms[0][0] * terms[0][1]
        for k, c in terms[1:]:
            acc = torch.add(acc, k, alpha=c)
        return acc * h if y is None else y + h * acc
    if y is None or increment_first:
        k, c = terms[0]
        acc = k * (h * c)
        terms = terms[1:]
    else:
        acc = y
    for k, c in terms:
        acc = torch.add(acc, k, alpha=h * c)
    return y + acc if (y is not None and increment_first) else acc


def rk_step_compensated(
    tab: ButcherTableau,
    f: Callable[[Tensor, Tensor], Tensor],
    y: Tensor,
    carry: Optional[Tensor],
    k1: Tensor,
    t_stages: Sequence[Tensor],
    h: Step,
) -> Tuple[Tensor, Tensor, List[Tensor]]:
    """`rk_step` with the state accumulated by Kahan's compensated summation: ``carry`` holds
    the rounding error of the previous additions y + dy (None at the start), so a float32
    state does not drift by one rounding per step over thousands of fixed steps. Returns
    (y1, carry, stage derivatives). The compensation terms have zero derivative."""
    _, ks, _ = rk_step(tab, f, y, k1, t_stages, h, False, result=False)
    dy = combine(None, ks, tab.b, h)
    z = dy if carry is None else dy - carry
    y1 = y + z
    return y1, (y1 - y) - z, ks


def rk_step(
    tab: ButcherTableau,
    f: Callable[[Tensor, Tensor], Tensor],
    y: Tensor,
    k1: Tensor,
    t_stages: Sequence[Tensor],
    h: Step,
    with_error: bool,
    result: bool = True,
) -> Tuple[Tensor, List[Tensor], Optional[Tensor]]:
    """Advance one step. Returns (y1, stage derivatives, local error estimate or None);
    ``result=False`` skips y1 of a non-FSAL method (the caller sums it itself).

    For FSAL tableaus the last stage input is y1 itself and the last k is f(t + h, y1).
    """
    ks = [k1]
    y1: Optional[Tensor] = None
    last = tab.stages - 1
    # Low precision: the step's result rounded once at |y| (costs one operation per step).
    low = y.dtype in LOW_PRECISION
    for i in range(1, tab.stages):
        yi = combine(y, ks, tab.a[i], h, increment_first=low and tab.fsal and i == last) if any(tab.a[i]) else y
        if tab.fsal and i == last:
            y1 = yi
        ks.append(f(t_stages[i], yi))
    if y1 is None and result:
        y1 = combine(y, ks, tab.b, h, increment_first=low)
    err = combine(None, ks, tab.b_err, h) if (with_error and tab.b_err is not None) else None
    return cast(Tensor, y1), ks, err  # None only with result=False, whose caller sums y1 itself


def _hermite_weights(theta: Union[float, Tensor]) -> Tuple:
    """Cubic Hermite basis (h00, h10, h01, h11) at theta in [0, 1]."""
    t2 = theta * theta
    t3 = t2 * theta
    return (2 * t3 - 3 * t2 + 1, t3 - 2 * t2 + theta, -2 * t3 + 3 * t2, t3 - t2)


def dense_outputs(
    tab: ButcherTableau, y0: Tensor, ks: Sequence[Tensor], thetas: Sequence[float], h: float
) -> List[Tensor]:
    """y(t + theta_j h) for several theta_j of one step from the continuous extension,
    y0 + h W K with W_ji = sum_d theta_j^(d+1) dense_id: one matrix product for all of them."""
    dense = tab.dense
    assert dense is not None, "dense output needs the method's continuous extension"
    w = []
    for th in thetas:
        powers = [th ** (d + 1) for d in range(len(dense[0]))]
        w.append([sum(map(float.__mul__, row, powers)) for row in dense])
    k = torch.stack(list(ks[: len(dense)])).reshape(len(dense), -1)
    out = torch.addmm(y0.reshape(1, -1), torch.tensor(w, dtype=y0.dtype, device=y0.device), k, alpha=h)
    return list(out.reshape(len(thetas), *y0.shape).unbind())


def interpolate(
    tab: ButcherTableau,
    y0: Tensor,
    y1: Tensor,
    ks: Sequence[Tensor],
    f1: Optional[Tensor],
    theta: Union[float, Tensor],
    h: Step,
) -> Tensor:
    """y(t + theta h) from the step's data: the method's own continuous extension when it
    has one (dopri5, tsit5: fourth order), else cubic Hermite using f0 = ks[0] and f1."""
    if tab.dense is not None:
        if isinstance(theta, Tensor):
            powers = torch.stack([theta ** (d + 1) for d in range(len(tab.dense[0]))])
            w = torch.tensor(tab.dense, dtype=powers.dtype, device=powers.device) @ powers
            acc = sum(w[i].to(y0.dtype) * k for i, k in enumerate(ks))
            return y0 + h * acc
        return dense_outputs(tab, y0, ks, [theta], _number(h))[0]
    assert f1 is not None, "Hermite interpolation needs f(t1, y1)"
    return hermite(y0, y1, ks[0], f1, theta, h)


def hermite(y0: Tensor, y1: Tensor, f0: Tensor, f1: Tensor, theta: Union[float, Tensor], h: Step) -> Tensor:
    """Cubic Hermite y(t + theta h) through (y0, f0) and (y1, f1) (Hairer I, §II.6)."""
    h00, h10, h01, h11 = _hermite_weights(theta)
    if isinstance(theta, Tensor):
        h00, h10, h01, h11 = (w.to(y0.dtype) for w in (h00, h10, h01, h11))
        return h00 * y0 + h01 * y1 + h * (h10 * f0 + h11 * f1)
    return torch.add(torch.add(y0 * h00, y1, alpha=h01), f0 * h10 + f1 * h11, alpha=_number(h))


def _number(h: Step) -> float:
    """A float step (a tensor step comes with a tensor theta, handled above)."""
    if isinstance(h, Tensor):
        raise TypeError("a tensor step size needs a tensor theta")
    return h
