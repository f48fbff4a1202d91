"""ODE-RNN / RNN-Δt: zero field = plain GRU, masks exclude missing values, both gradient modes."""

import pytest
import torch

from odeflow.models import ODERNN, VectorFieldMLP, disc_opt, make_ode_rnn, make_rnn_dt, opt_disc


def _series(B=3, T=6, D=2, dtype=torch.float64):
    times = torch.sort(torch.rand(T, dtype=dtype) * 2).values
    values = torch.randn(B, T, D, dtype=dtype)
    mask = (torch.rand(B, T, D) < 0.6).to(dtype)
    return times, values, mask


def test_zero_field_ode_rnn_equals_plain_gru():
    times, values, _ = _series()
    mask = torch.ones_like(values)
    field = VectorFieldMLP(5, hidden=(7,), transform="identity", dtype=torch.float64)
    torch.nn.init.zeros_(field.layers[-1].weight)
    torch.nn.init.zeros_(field.layers[-1].bias)
    core = ODERNN(2, 5, field, solver=disc_opt("rk4", h=0.01)).double()
    out = core(times, values, mask)
    h = torch.zeros(3, 5, dtype=torch.float64)
    for i in range(times.shape[0]):
        h = core.cell(torch.cat([values[:, i], mask[:, i]], -1), h)
        torch.testing.assert_close(out.after[i], h, rtol=0, atol=1e-12)
    torch.testing.assert_close(out.final, h, rtol=0, atol=1e-12)


def test_ode_rnn_evolves_by_the_ode_between_observations():
    """h(t_1^-) is the solve of the field from h(t_0) over the gap (Δt-aware)."""
    times, values, mask = _series(T=2)
    mask = torch.ones_like(values)
    model = make_ode_rnn(2, hidden_dim=4, field_hidden=8, solver=disc_opt("rk4", h=1e-3)).double()
    out = model.core(times, values, mask)
    from odeflow import FixedStep, solve

    ref = solve(model.core.field, out.after[0], times, method="rk4", step=FixedStep(1e-3)).ys[-1]
    torch.testing.assert_close(out.before[1], ref)
    assert not torch.allclose(out.before[1], out.after[0])


@pytest.mark.parametrize("kind", ["ode-rnn", "rnn-dt"])
def test_masked_values_change_nothing(kind):
    times, values, mask = _series()
    model = (make_ode_rnn(2, 4, 8) if kind == "ode-rnn" else make_rnn_dt(2, 4)).double()
    pred = model(times, values, mask)
    changed = torch.where(mask > 0, values, torch.full_like(values, 1e3))
    changed[0, 0, 0] = float("nan") if mask[0, 0, 0] == 0 else changed[0, 0, 0]
    torch.testing.assert_close(model(times, changed, mask), pred, rtol=0, atol=0)
    # and an observed value does change the predictions after it
    i = int(mask[0].sum(-1).nonzero()[0])
    d = int(mask[0, i].nonzero()[0])
    bumped = values.clone()
    bumped[0, i, d] += 1.0
    later = model(times, bumped, mask)[0, i + 1 :]
    assert not torch.allclose(later, pred[0, i + 1 :])
    # predictions at t_i never use x_i itself
    torch.testing.assert_close(model(times, bumped, mask)[0, : i + 1], pred[0, : i + 1], rtol=0, atol=0)


def test_unobserved_time_keeps_ode_rnn_state_but_rnn_dt_steps():
    times, values, mask = _series(B=1, T=3)
    mask[:] = 1
    mask[0, 1] = 0
    field = VectorFieldMLP(4, hidden=(8,), transform="identity", dtype=torch.float64)
    torch.nn.init.zeros_(field.layers[-1].weight)
    torch.nn.init.zeros_(field.layers[-1].bias)
    ode = ODERNN(2, 4, field).double()
    out = ode(times, values, mask)
    torch.testing.assert_close(out.after[1], out.after[0], rtol=0, atol=0)
    rnn = ODERNN(2, 4, None, delta_t_input=True, update_every_time=True).double()
    out = rnn(times, values, mask)
    assert not torch.allclose(out.after[1], out.after[0])


def test_reverse_run_ends_at_t0():
    times, values, mask = _series(B=2, T=4)
    times = times + 1.0
    model = make_ode_rnn(2, 4, 8).double()
    fwd = model.core(times, values, mask, reverse=True)
    to0 = model.core(times, values, mask, reverse=True, t0=torch.tensor(0.0, dtype=torch.float64))
    assert not torch.allclose(fwd.final, to0.final)
    torch.testing.assert_close(fwd.final, fwd.after[0])


def test_gradients_of_both_modes_agree():
    times, values, mask = _series(B=2, T=4)
    grads = []
    for solver in (disc_opt("dopri5", h=0.01), opt_disc("dopri5", h=0.01)):
        torch.manual_seed(1)
        model = make_ode_rnn(2, 4, 8, solver=solver).double()
        loss = (model(times, values, mask) - values).pow(2).mul(mask).sum()
        grads.append(torch.autograd.grad(loss, list(model.parameters())))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_bad_shapes_raise():
    times, values, mask = _series()
    model = make_rnn_dt(2, 4).double()
    with pytest.raises(ValueError, match="mask shape"):
        model(times, values, mask[:, :-1])
    with pytest.raises(ValueError, match="strictly increasing"):
        model(times.flip(0), values, mask)
