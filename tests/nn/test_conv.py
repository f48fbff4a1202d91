import pytest
import torch

from odeflow.nn.conv import ConvODENet, piece_index


@pytest.mark.parametrize("t,k", [(0.0, 0), (0.099, 0), (0.1, 1), (0.55, 5), (0.999, 9), (1.0, 9), (1.7, 9), (-0.2, 0)])
def test_piece_index(t, k):
    assert int(piece_index(torch.tensor(t, dtype=torch.float64), 1.0, 10)) == k


def test_weights_are_piecewise_constant_in_time():
    torch.manual_seed(0)
    net = ConvODENet((2, 4, 4), hidden=(5, 5, 5), pieces=3, T0=0.9, zero_init=False).double()
    with torch.no_grad():
        for layer in net.layers:
            layer.weight[1].normal_()  # piece 1 ([0.3, 0.6)) differs from the others
    z = torch.randn(2, 32, dtype=torch.float64)
    f = lambda t: net(torch.tensor(t, dtype=torch.float64), z)  # noqa: E731
    # same piece: only the concatenated time channel changes f, linearly in the first layer's input
    assert torch.allclose(f(0.35), f(0.35))
    # leaving piece 0 for piece 1 changes the weights: a jump much larger than the t-channel change
    jump = (f(0.3001) - f(0.2999)).abs().max()
    smooth = (f(0.2999) - f(0.2997)).abs().max()
    assert jump > 1e3 * smooth
    assert f(0.1).shape == (2, 32)


def test_zero_init_and_bad_arguments():
    net = ConvODENet((1, 4, 4))
    assert torch.equal(net(torch.tensor(0.3), torch.randn(3, 16)), torch.zeros(3, 16))
    with pytest.raises(ValueError, match="activation"):
        ConvODENet((1, 4, 4), activation="relu6")
    with pytest.raises(ValueError, match="pieces"):
        ConvODENet((1, 4, 4), pieces=0)
    with pytest.raises(ValueError, match="shape"):
        ConvODENet((4, 4))


@pytest.mark.parametrize("pieces", [1, 4])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_time_per_sample_equals_the_batch_time_repeated(pieces, seed):
    """A scalar t and the same t repeated per sample ([B] or [B, 1, 1, 1]) give equal outputs (the
    likelihood path is unchanged), and mixed times equal one call per sample with its own time."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    shape = (int(torch.randint(1, 3, (1,), generator=g)), 4, 4)
    net = ConvODENet(shape, hidden=(6, 5), pieces=pieces, T0=1.3, zero_init=False).double()
    b = 5
    z = torch.randn(b, net.dim, dtype=torch.float64, generator=g)
    t = float(torch.rand((), generator=g, dtype=torch.float64)) * 1.3
    ref = net(torch.tensor(t, dtype=torch.float64), z)
    for tt in (torch.full((b,), t, dtype=torch.float64), torch.full((b, 1, 1, 1), t, dtype=torch.float64)):
        assert torch.equal(net(tt, z), ref)
    times = torch.rand(b, generator=g, dtype=torch.float64) * 1.3
    mixed = net(times, z)
    rows = torch.cat([net(times[i], z[i : i + 1]) for i in range(b)])
    assert torch.allclose(mixed, rows, rtol=1e-12, atol=1e-12)


def test_per_sample_time_has_gradients_and_bad_shapes_raise():
    net = ConvODENet((1, 4, 4), hidden=(3,), pieces=2, zero_init=False)
    z = torch.randn(3, 16)
    net(torch.tensor([0.1, 0.6, 0.9]), z).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    with pytest.raises(ValueError, match="one per sample"):
        net(torch.rand(4), z)
    with pytest.raises(ValueError, match="one per sample"):
        net(torch.rand(3, 2), z)
