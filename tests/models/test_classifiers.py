"""ODE-Net classifiers: shapes, the ResNet = Euler identity, parameters, gradient modes, NFE."""

import pytest
import torch

from odeflow import Adaptive, FixedStep
from odeflow.models import KINDS, conv_classifier, count_parameters, mlp_classifier
from odeflow.models.classifier_fields import ConvField, MLPField
from odeflow.models.classifiers import Augment
from odeflow.models.ode_block import EulerStack, ODEBlock


@pytest.mark.parametrize("kind", KINDS)
def test_conv_shapes_and_nfe(kind):
    model = conv_classifier(kind, in_channels=1, num_classes=10, channels=8, downsample=1, augment=4, resnet_steps=3)
    out = model.classify(torch.randn(5, 1, 8, 8))
    assert out.logits.shape == (5, 10)
    assert out.stats.nfe == (3 if kind == "resnet" else 4 * 3)  # rk4: 4 evaluations per step


@pytest.mark.parametrize("kind", KINDS)
def test_mlp_shapes(kind):
    model = mlp_classifier(kind, dim=2, num_classes=3, hidden=(8,), augment=2, resnet_steps=2)
    assert model(torch.randn(7, 2)).shape == (7, 3)


@pytest.mark.parametrize("downsample,size,expected", [(0, 8, 8), (1, 8, 4), (2, 28, 7), (2, 32, 8)])
def test_stem_downsamples(downsample, size, expected):
    model = conv_classifier("odenet", 3, 10, channels=8, downsample=downsample)
    assert model.features(torch.randn(2, 3, size, size)).shape == (2, 8, expected, expected)


@pytest.mark.parametrize(
    "builder,kwargs",
    [(conv_classifier, dict(in_channels=1, channels=16)), (mlp_classifier, dict(dim=2, hidden=(16, 16)))],
)
def test_resnet_twin_has_the_odenets_parameters(builder, kwargs):
    ode, res = builder("odenet", num_classes=10, **kwargs), builder("resnet", num_classes=10, **kwargs)
    assert count_parameters(ode) == count_parameters(res)
    assert [(k, v.shape) for k, v in ode.state_dict().items()] == [(k, v.shape) for k, v in res.state_dict().items()]


@pytest.mark.parametrize(
    "builder,x,steps", [(conv_classifier, torch.randn(4, 1, 8, 8), 5), (mlp_classifier, torch.randn(6, 2), 7)]
)
def test_resnet_equals_odenet_solved_with_euler_exactly(builder, x, steps):
    kwargs = dict(in_channels=1, channels=8) if builder is conv_classifier else dict(dim=2, hidden=(16,))
    ode = builder("odenet", num_classes=10, method="euler", step=FixedStep(steps=steps), T=1.5, **kwargs).double()
    res = builder("resnet", num_classes=10, resnet_steps=steps, T=1.5, **kwargs).double()
    res.load_state_dict(ode.state_dict())
    assert torch.equal(ode(x.double()), res(x.double()))
    # and not by accident: another step count gives another network
    ode.set_solver("euler", FixedStep(steps=steps + 1))
    assert not torch.allclose(ode(x.double()), res(x.double()))


def test_anode_appends_zero_channels():
    aug = Augment(3)
    h = torch.randn(2, 5, 4, 4)
    out = aug(h)
    assert out.shape == (2, 8, 4, 4) and torch.equal(out[:, :5], h) and not out[:, 5:].any()
    model = conv_classifier("anode", 1, 10, channels=8, augment=3)
    assert model.block.field.in_features == 11


@pytest.mark.parametrize("kind", ["odenet", "sonode"])
def test_adjoint_gradient_matches_backprop(kind):
    """Both gradient modes give the same parameter gradient with a tight adaptive solver."""
    torch.manual_seed(1)
    grads = []
    for adjoint in (False, True):
        torch.manual_seed(1)
        model = mlp_classifier(
            kind,
            dim=3,
            num_classes=2,
            hidden=(8,),
            activation="tanh",
            method="dopri5",
            step=Adaptive(1e-9, 1e-9),
            adjoint=adjoint,
        ).double()
        x = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
        out = model.classify(x)
        out.logits.pow(2).sum().backward()
        grads.append(torch.cat([p.grad.reshape(-1) for p in model.block.field.parameters()]))
        assert out.stats.nfe > 0
        assert (out.stats.nfe_backward > 0) == adjoint  # only the adjoint evaluates f backwards
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-7)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown classifier"):
        conv_classifier("densenet", 1, 10)
    with pytest.raises(ValueError, match="T must be > 0"):
        ODEBlock(MLPField(2), T=0.0)
    with pytest.raises(ValueError, match="steps"):
        EulerStack(MLPField(2), steps=0)
    with pytest.raises(ValueError, match=r"\[batch, 8, H, W\]"):
        ConvField(8)(torch.tensor(0.0), torch.randn(2, 3, 4, 4))
