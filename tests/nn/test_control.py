"""Control layers: weights interpolated linearly between control times (seed 000 Fig. 1)."""

import pytest
import torch

from odeflow.nn import ControlLayer, ODENet, hat_weights
from odeflow.nn.layers import make_layer

TIMES = [0.0, 0.5, 2.0]


@pytest.mark.parametrize(
    "t, expected",
    [
        (0.0, [1, 0, 0]),
        (0.25, [0.5, 0.5, 0]),
        (0.5, [0, 1, 0]),
        (1.25, [0, 0.5, 0.5]),
        (2.0, [0, 0, 1]),
        (-1.0, [1, 0, 0]),
        (3.0, [0, 0, 1]),
    ],
)
def test_hat_weights_are_linear_between_controls_and_constant_outside(t, expected):
    w = hat_weights(torch.tensor(t, dtype=torch.float64), torch.tensor(TIMES, dtype=torch.float64))
    assert torch.allclose(w, torch.tensor(expected, dtype=torch.float64))


def _layer_with_distinct_controls(kind):
    torch.manual_seed(0)
    layer = ControlLayer(make_layer(kind, 3, 4), TIMES).double()
    with torch.no_grad():
        for stack in layer.controls:
            stack.add_(torch.randn_like(stack))
    return layer


def _eval_with(layer, k_weights, t, x):
    params = {
        n: torch.tensordot(torch.tensor(k_weights, dtype=torch.float64), s, dims=1)
        for n, s in zip(layer.names, layer.controls)
    }
    return torch.func.functional_call(layer._template[0], params, (t, x))


@pytest.mark.parametrize("kind", ["ignore", "concat", "concatsquash"])
def test_control_layer_uses_each_control_at_its_time_and_the_blend_in_between(kind):
    layer = _layer_with_distinct_controls(kind)
    x = torch.randn(5, 3, dtype=torch.float64)
    for k, tk in enumerate(TIMES):
        t = torch.tensor(tk, dtype=torch.float64)
        onehot = [float(i == k) for i in range(3)]
        assert torch.allclose(layer(t, x), _eval_with(layer, onehot, t, x))
    t = torch.tensor(1.25, dtype=torch.float64)
    assert torch.allclose(layer(t, x), _eval_with(layer, [0, 0.5, 0.5], t, x))
    assert not torch.allclose(layer(t, x), _eval_with(layer, [0, 1, 0], t, x))


def test_time_gradient_through_control_weights_matches_finite_difference():
    layer = _layer_with_distinct_controls("ignore")
    x = torch.randn(5, 3, dtype=torch.float64)
    t = torch.tensor(0.9, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(layer(t, x).sum(), t)
    eps = 1e-6
    with torch.no_grad():
        fd = (layer(t.detach() + eps, x).sum() - layer(t.detach() - eps, x).sum()) / (2 * eps)
    assert float(g) == pytest.approx(float(fd), rel=1e-6)


def test_odenet_with_controls_has_only_control_parameters_and_all_get_gradients():
    net = ODENet(2, (8, 8), control_times=[0.0, 1.0]).double()
    assert all("controls" in name for name, _ in net.named_parameters())
    x = torch.randn(4, 2, dtype=torch.float64)
    net(torch.tensor(0.3, dtype=torch.float64), x).pow(2).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("times", [[], [1.0, 1.0], [2.0, 1.0]])
def test_bad_control_times_raise(times):
    with pytest.raises(ValueError, match="increasing"):
        ControlLayer(make_layer("ignore", 2, 2), times)
