import pytest
import torch

from odeflow.models import NeuralSDE

pytest.importorskip("torchsde")


def test_sample_shapes_and_positive_diffusion():
    torch.manual_seed(0)
    sde = NeuralSDE(2, hidden=(8,))
    y0 = torch.randn(5, 2)
    ts = torch.linspace(0, 1, 7)
    paths = sde.sample(y0, ts, dt=0.05)
    assert paths.shape == (7, 5, 2)
    assert torch.equal(paths[0], y0)
    assert (sde.g(ts[0], y0) > 0).all()


def test_same_seed_same_paths_and_paths_spread():
    sde = NeuralSDE(1, hidden=(8,))
    y0 = torch.zeros(200, 1)
    ts = torch.linspace(0, 1, 5)
    with torch.no_grad():
        a = sde.sample(y0, ts, dt=0.05, generator_seed=3)
        b = sde.sample(y0, ts, dt=0.05, generator_seed=3)
    assert torch.equal(a, b)
    assert a[-1].std() > 0.1  # softplus diffusion ~0.7 at the start: paths spread like Brownian motion


@pytest.mark.parametrize("adjoint", [False, True])
def test_gradient_of_marginal_nll_reaches_drift_and_diffusion(adjoint):
    torch.manual_seed(0)
    sde = NeuralSDE(2, hidden=(8,))
    ts = torch.linspace(0, 0.5, 4)
    paths = sde.sample(torch.zeros(32, 2), ts, dt=0.05, adjoint=adjoint)
    obs = torch.randn(4, 10, 2)
    loss = NeuralSDE.marginal_nll(paths, obs)
    loss.backward()
    for net in (sde.drift, sde.diffusion):
        assert net.layers[0].linear.weight.grad is not None and net.layers[0].linear.weight.grad.abs().sum() > 0


def test_marginal_nll_matches_gaussian_formula():
    paths = torch.tensor([[[0.0], [2.0]]])  # mean 1, var 2 (unbiased)
    obs = torch.tensor([[[1.0], [3.0]]])
    var = 2.0 + 1e-6
    expected = 0.5 * (torch.log(torch.tensor(2 * torch.pi * var)) + (0 + 4 / var) / 2)
    assert NeuralSDE.marginal_nll(paths, obs).item() == pytest.approx(expected.item(), rel=1e-6)


def test_bad_inputs():
    sde = NeuralSDE(2)
    with pytest.raises(ValueError, match=r"y0 must be \[batch, 2\]"):
        sde.sample(torch.zeros(3), torch.linspace(0, 1, 3))
    with pytest.raises(ValueError, match="unknown SDE method"):
        sde.sample(torch.zeros(1, 2), torch.linspace(0, 1, 3), method="heun2")
    with pytest.raises(ValueError, match="share T and d"):
        NeuralSDE.marginal_nll(torch.zeros(3, 4, 2), torch.zeros(2, 4, 2))
