"""Neural CDE classifier: the control channels (time held outside the observed span, linear fill,
cumulative counts), adjoint and backprop gradients agree in float64 (both splines, random data
and weights), z(t) solves dz = f(z) dX by a check against a fine explicit sum, and a short
training run on random two-class series beats chance."""

import pytest
import torch
import torch.nn.functional as F

from helpers.series_batches import (
    one_thread,  # noqa: F401  (an autouse fixture)
    toy_test_accuracy,
)
from helpers.series_batches import smooth_batch as _smooth_batch
from odeflow.gradients import DiscretizeOptimize, OptimizeDiscretize
from odeflow.models.cde_splines import CubicPath
from odeflow.models.ncde import NeuralCDE, control_channels
from odeflow.models.ode_solver import ODESolver
from odeflow.models.sequence_classifiers import make_sequence_classifier
from odeflow.solvers.stepping import FixedStep


def _batch(seed, B=3, T=8, D=2, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    times = torch.cumsum(torch.rand(T, generator=g, dtype=dtype) * 0.2 + 0.05, 0)
    values = torch.randn(B, T, D, generator=g, dtype=dtype)
    mask = (torch.rand(B, T, D, generator=g) < 0.7).to(dtype)
    mask[:, 0] = 1.0
    mask[0, -2:] = 0.0  # series 0 ends early
    return times, values, mask


def test_control_channels():
    times = torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64)
    values = torch.tensor([[[0.0], [4.0], [0.0], [8.0]]], dtype=torch.float64)
    mask = torch.tensor([[[0.0], [1.0], [0.0], [1.0]]], dtype=torch.float64)
    x = control_channels(times, values, mask, count_scale=0.5)
    assert torch.equal(x[0, :, 0], torch.tensor([1.0, 1.0, 2.0, 3.0], dtype=torch.float64))  # time from t=1 on
    assert torch.equal(x[0, :, 1], torch.tensor([4.0, 4.0, 6.0, 8.0], dtype=torch.float64))
    assert torch.equal(x[0, :, 2], torch.tensor([0.0, 0.5, 0.5, 1.0], dtype=torch.float64))


def _model(spline, adjoint, seed, h=0.02):
    torch.manual_seed(seed)
    grad = OptimizeDiscretize() if adjoint else DiscretizeOptimize()
    net = NeuralCDE(2, 5, 3, width=7, spline=spline, count_scale=0.3, solver=ODESolver("rk4", FixedStep(h), grad))
    return net.double()


def _gradient_gap(spline, seed, h):
    """max |backprop - adjoint| / max |backprop| over every parameter gradient."""
    batch, y = _smooth_batch(seed), torch.tensor([0, 2, 1])
    grads = []
    for adjoint in (False, True):
        net = _model(spline, adjoint, seed, h=h)
        F.cross_entropy(net(*batch), y).backward()
        grads.append(torch.cat([p.grad.reshape(-1) for p in net.parameters()]))
    scale = grads[0].abs().max()
    assert scale > 1e-3
    return float((grads[0] - grads[1]).abs().max() / scale)


@pytest.mark.parametrize("spline,seed", [("hermite", 0), ("natural", 1)])
def test_adjoint_and_backprop_gradients_agree(spline, seed):
    """The continuous adjoint (rk4 backwards on the same grid) equals backprop up to the O(h^4)
    discretisation: measured 1e-6 to 5e-6 of the largest gradient at h = 0.05 (seeds 0-2)."""
    assert _gradient_gap(spline, seed, 0.05) < 2e-5


@pytest.mark.slow
@pytest.mark.parametrize("spline", ["hermite", "natural"])
@pytest.mark.parametrize("seed", range(3))
def test_adjoint_gap_shrinks_at_the_solver_order(spline, seed):
    """Halving h shrinks the gap by ~16 (rk4); a wrong adjoint term would not shrink it at all."""
    coarse, fine = _gradient_gap(spline, seed, 0.05), _gradient_gap(spline, seed, 0.025)
    assert fine < 1e-6 and fine < coarse / 8


def test_solution_matches_a_fine_riemann_stieltjes_sum():
    """z(t_end) from the solver against Heun's rule for the Riemann-Stieltjes integral on 2,000 steps:
    z~ = z_j + f(z_j) dX_j,  z_{j+1} = z_j + (f(z_j) + f(z~)) dX_j / 2,  dX_j = X(s_{j+1}) - X(s_j)."""
    times, values, mask = _batch(5, B=2, T=6)
    mask[:, -1] = 1.0  # every series ends at the last knot
    net = _model("natural", False, 5, h=0.01)
    with torch.no_grad():
        feats = net.features(times, values, mask)
        x = control_channels(times, values, mask, 0.3)
        path = CubicPath(times, x, "natural")
        s = torch.linspace(float(times[0]), float(times[-1]), 2001, dtype=torch.float64)
        xs = path.evaluate(s)  # [B, S, C]
        z = net.initial(x[:, 0])
        for j in range(len(s) - 1):
            dx = (xs[:, j + 1] - xs[:, j]).unsqueeze(-1)
            pred = z + (net.field(z) @ dx).squeeze(-1)
            z = z + ((net.field(z) + net.field(pred)) @ dx).squeeze(-1) / 2
    assert (feats - z).abs().max() < 1e-5 * max(1.0, float(z.abs().max()))


def test_short_training_beats_chance():
    torch.manual_seed(0)
    net = make_sequence_classifier(
        "ncde", 1, 2, hidden=12, field_hidden=24, step_size=0.1, method="rk4", count_scale=0.05
    )
    acc = toy_test_accuracy(net)
    assert acc >= 0.8, f"test accuracy {acc:.3f} (chance 0.5)"


def test_unknown_spline_raises():
    with pytest.raises(ValueError, match="unknown spline"):
        NeuralCDE(2, 4, 2, spline="cubic")  # type: ignore[arg-type]
