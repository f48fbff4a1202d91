"""Event handling through the drop-in (odeint(event_fn=...), odeint_event) against torchdiffeq."""

import math

import pytest
import torch

import odeflow

torchdiffeq = pytest.importorskip("torchdiffeq")
D = torch.float64


def make(dtype):
    k = torch.tensor(1.0, dtype=dtype, requires_grad=True)
    return k, (lambda t, y: -k * y), torch.tensor([1.0, 2.0], dtype=dtype, requires_grad=True)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-8), (torch.float32, 1e-4)])
@pytest.mark.parametrize("interface", ["odeint", "odeint_adjoint"])
def test_odeint_event_time_state_and_gradients_match_torchdiffeq(dtype, tol, interface):
    """y' = -k y, event y_0 = 0.2: t_e = ln 5 / k; gradients through the event time."""
    results = []
    for lib in (odeflow, torchdiffeq):
        k, f, y0 = make(dtype)
        kw = dict(adjoint_params=(k,)) if interface == "odeint_adjoint" else {}
        t_e, sol = lib.odeint_event(
            f,
            y0,
            torch.tensor(0.0, dtype=dtype),
            event_fn=lambda t, y: y[0] - 0.2,
            odeint_interface=getattr(lib, interface),
            rtol=1e-9,
            atol=1e-11,
            **kw,
        )
        grads = torch.autograd.grad(t_e + sol[-1, 1], (y0, k))
        results.append((t_e.detach(), sol.detach(), grads))
    (te_a, sol_a, g_a), (te_b, sol_b, g_b) = results
    assert sol_a.shape == sol_b.shape == (2, 2)
    assert abs(float(te_a) - math.log(5.0)) < tol
    assert abs(float(te_a - te_b)) < tol and torch.allclose(sol_a, sol_b, atol=tol)
    for a, b in zip(g_a, g_b):
        assert torch.allclose(a, b, atol=10 * tol)
    # analytic: t_e = ln(y0_0 / 0.2) / k, y_1(t_e) = y0_1 * 0.2 / y0_0 (independent of k)
    assert abs(float(g_a[1]) - (-math.log(5.0))) < 10 * tol
    assert torch.allclose(g_a[0], torch.tensor([1.0 - 0.4, 0.2], dtype=dtype), atol=10 * tol)


@pytest.mark.parametrize("method,options", [("dopri5", None), ("rk4", dict(step_size=0.01)), ("bosh3", None)])
def test_odeint_event_fn_reverse_time(method, options):
    """Backwards from t = 0 until y_0 grows to 3 (t_e = -ln 3), as torchdiffeq."""
    out = []
    for lib in (odeflow, torchdiffeq):
        _, f, y0 = make(D)
        t_e, sol = lib.odeint(
            f,
            y0,
            torch.tensor([0.0, -1.0], dtype=D),
            event_fn=lambda t, y: y[0] - 3.0,
            method=method,
            options=options,
            rtol=1e-9,
            atol=1e-11,
        )
        out.append((float(t_e), sol.detach()))
    # torchdiffeq's fixed-grid root uses linear interpolation; its bosh3 is ~1e-6 off at this rtol
    tol = {"rk4": 1e-3, "bosh3": 1e-5}.get(method, 1e-7)
    assert abs(out[0][0] + math.log(3.0)) < 1e-6
    assert abs(out[0][0] - out[1][0]) < tol and torch.allclose(out[0][1], out[1][1], atol=10 * tol)


def test_event_mode_needs_two_times():
    with pytest.raises(ValueError, match="len\\(t\\) == 2"):
        odeflow.odeint(lambda t, y: -y, torch.ones(1), torch.linspace(0, 1, 3), event_fn=lambda t, y: y - 0.5)


def test_multi_output_event_fn_stops_at_the_first_component():
    f = lambda t, y: torch.ones_like(y)  # noqa: E731
    t_e, sol = odeflow.odeint(
        f,
        torch.zeros(1, dtype=D),
        torch.tensor([0.0, 1.0], dtype=D),
        event_fn=lambda t, y: torch.stack([y[0] - 2.0, y[0] - 0.7]),
    )
    assert abs(float(t_e) - 0.7) < 1e-9 and abs(float(sol[-1, 0]) - 0.7) < 1e-9
