"""Neural rough DE classifier: shapes and windows (a series that ended early stops moving; a batch's
windows do not depend on its other series), its log-ODE steps against an explicit RK4 loop over
the window log-signatures, adjoint and backprop gradients agree in float64, and a short training
run on random two-class series beats chance."""

import pytest
import torch
import torch.nn.functional as F

from helpers.series_batches import (
    one_thread,  # noqa: F401  (an autouse fixture)
    toy_test_accuracy,
)
from helpers.series_batches import smooth_batch as _smooth_batch
from odeflow.gradients import DiscretizeOptimize, OptimizeDiscretize
from odeflow.models.logsignature import window_logsignatures
from odeflow.models.ncde import control_channels
from odeflow.models.nrde import NeuralRDE, default_windows
from odeflow.models.ode_solver import ODESolver
from odeflow.models.sequence_classifiers import make_sequence_classifier
from odeflow.solvers.stepping import FixedStep


def _model(adjoint, seed, h=1.0, window=0.4, method="rk4"):
    torch.manual_seed(seed)
    grad = OptimizeDiscretize() if adjoint else DiscretizeOptimize()
    net = NeuralRDE(2, 5, 3, window, width=7, count_scale=0.3, solver=ODESolver(method, FixedStep(h), grad))
    return net.double()


@pytest.mark.parametrize("seed", range(3))
def test_steps_match_an_explicit_rk4_loop_over_the_windows(seed):
    """z after the last window = RK4 (one step of unit length per window) of dz/ds = f(z) L_k,
    L_k the window log-signatures over edges origin + k * window."""
    times, values, mask = _smooth_batch(seed)
    net = _model(False, seed)
    with torch.no_grad():
        got = net.features(times, values, mask)
        x = control_channels(times, values, mask, 0.3)
        edges = net.edges(times)
        assert edges[0] <= times[0] and edges[-1] >= times[-1] and torch.allclose(edges.diff(), edges.new_tensor(0.4))
        logsig = window_logsignatures(times, x, edges)
        z = net.initial(x[:, 0])
        for k in range(logsig.shape[1]):

            def g(z, L=logsig[:, k]):
                return (net.field(z) @ L.unsqueeze(-1)).squeeze(-1)

            k1 = g(z)
            k2 = g(z + k1 / 2)
            k3 = g(z + k2 / 2)
            k4 = g(z + k3)
            z = z + (k1 + 2 * k2 + 2 * k3 + k4) / 6
    assert got.shape == (3, 5)
    assert torch.allclose(got, z, atol=1e-12)


def test_a_series_that_ends_early_stops_and_does_not_see_the_others():
    """Series 0 of the batch, alone on its own times, gives the same z as in the batch (its path
    is constant after its last observation); every logit is finite."""
    times, values, mask = _smooth_batch(4)
    net = _model(False, 4, window=0.3)
    with torch.no_grad():
        batch = net(times, values, mask)
        last = int(mask[0].sum(-1).nonzero().max())
        alone = net(times[: last + 1], values[:1, : last + 1], mask[:1, : last + 1])
    assert batch.shape == (3, 3) and torch.isfinite(batch).all()
    assert torch.allclose(batch[:1], alone, atol=1e-12)


def _gradient_gap(seed, h):
    batch, y = _smooth_batch(seed), torch.tensor([0, 2, 1])
    grads = []
    for adjoint in (False, True):
        net = _model(adjoint, seed, h=h)
        F.cross_entropy(net(*batch), y).backward()
        grads.append(torch.cat([p.grad.reshape(-1) for p in net.parameters()]))
    scale = grads[0].abs().max()
    assert scale > 1e-3
    return float((grads[0] - grads[1]).abs().max() / scale)


@pytest.mark.parametrize("seed", range(3))
def test_adjoint_and_backprop_gradients_agree(seed):
    """The continuous adjoint (rk4 backwards in each window) against backprop through the same
    steps: they differ by the discretisation, which shrinks by ~16 when h halves (a wrong adjoint
    term would not shrink)."""
    coarse, fine = _gradient_gap(seed, 0.25), _gradient_gap(seed, 0.125)
    assert fine < 1e-5 and fine < coarse / 8


def test_short_training_beats_chance():
    torch.manual_seed(0)
    net = make_sequence_classifier("nrde", 1, 2, hidden=12, field_hidden=24, method="rk4", count_scale=0.05, window=0.2)
    acc = toy_test_accuracy(net)
    assert acc >= 0.8, f"test accuracy {acc:.3f} (chance 0.5)"


def test_default_windows_and_bad_window():
    assert [default_windows(n) for n in (2, 24, 150, 1460)] == [1, 20, 49, 153]
    with pytest.raises(ValueError, match="window must be a positive"):
        NeuralRDE(1, 4, 2, window=0.0)
