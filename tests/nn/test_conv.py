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
