"""`odeflow.training.ema.EMA`: the update recursion with its warmup, the swap of the averaged
weights in and out, the state round trip, and the mistakes."""

import pytest
import torch
from torch import nn

from odeflow.nn import ODENet
from odeflow.training.ema import EMA, EMAStep, averaged_weights


def random_steps(model, n, gen):
    """n random 'optimizer steps' on the model's parameters; their values after each step."""
    trail = []
    for _ in range(n):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype))
        trail.append([p.detach().clone() for p in model.parameters()])
    return trail


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("warmup", [True, False])
def test_update_is_the_recursion_with_warmup(seed, warmup):
    gen = torch.Generator().manual_seed(seed)
    decay = float(torch.empty(()).uniform_(0.5, 0.99, generator=gen))
    model = ODENet(3, [5]).double()
    start = [p.detach().clone() for p in model.parameters()]
    trail = random_steps(model, 30, gen)
    expected = start
    for n, params in enumerate(trail, start=1):
        beta = min(decay, (1 + n) / (10 + n)) if warmup else decay
        expected = [beta * e + (1 - beta) * p for e, p in zip(expected, params)]
    # the EMA updated after each step, replayed from the start
    model2 = ODENet(3, [5]).double()
    with torch.no_grad():
        for p, s in zip(model2.parameters(), start):
            p.copy_(s)
    ema = EMA(model2, decay, warmup=warmup)
    for params in trail:
        with torch.no_grad():
            for p, v in zip(model2.parameters(), params):
                p.copy_(v)
        ema.update()
    assert ema.updates == 30
    for got, want in zip(ema.shadow, expected):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_applied_swaps_in_the_average_and_restores_the_trained_weights_even_after_an_error():
    gen = torch.Generator().manual_seed(3)
    model = ODENet(2, [4]).double()
    ema = EMA(model, 0.9)
    for _ in range(5):
        random_steps(model, 1, gen)
        ema.update()
    trained = [p.detach().clone() for p in model.parameters()]
    x, t = torch.randn(7, 2, dtype=torch.float64, generator=gen), torch.tensor(0.3, dtype=torch.float64)
    with ema.applied():
        assert all(torch.equal(p, s) for p, s in zip(model.parameters(), ema.shadow))
        averaged_out = model(t, x)
    assert all(torch.equal(p, s) for p, s in zip(model.parameters(), trained))
    assert not torch.allclose(averaged_out, model(t, x))  # the average is another field
    with pytest.raises(RuntimeError, match="inside"):
        with ema.applied():
            raise RuntimeError("inside")
    assert all(torch.equal(p, s) for p, s in zip(model.parameters(), trained))


def test_state_round_trip_only_and_checkpoint_weights():
    gen = torch.Generator().manual_seed(4)
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    ema = EMA(model, 0.95, only=list(model[0].parameters()))  # the second layer is not averaged
    assert ema.names == ["0.weight", "0.bias"]
    for _ in range(4):
        random_steps(model, 1, gen)
        ema.update()
    other = EMA(model, 0.95, only=list(model[0].parameters()))
    other.load_state_dict(ema.state_dict())
    assert other.updates == 4 and all(torch.equal(a, b) for a, b in zip(other.shadow, ema.shadow))
    state = dict(model=model.state_dict(), auxiliary=dict(ema=ema.state_dict()))
    weights = averaged_weights(state)
    assert torch.equal(weights["0.weight"], ema.shadow[0]) and torch.equal(weights["1.weight"], model[1].weight)
    plain = averaged_weights(dict(model=model.state_dict()))  # no EMA: the model's own weights
    assert all(torch.equal(plain[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="another model"):
        EMA(nn.Linear(5, 5), 0.9).load_state_dict(ema.state_dict())


@pytest.mark.parametrize("decay", [1.0, -0.1, 2, "0.9", True])
def test_bad_decay_is_refused(decay):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        EMA(nn.Linear(2, 2), decay)


def test_a_checkpoint_without_an_average_restarts_it_from_the_loaded_weights():
    gen = torch.Generator().manual_seed(5)
    model = nn.Linear(3, 2)
    step = EMAStep(EMA(model, 0.9))  # built (as at setup) from the initial weights
    random_steps(model, 1, gen)  # the checkpoint's weights are loaded
    step.load_state_dict({})  # ... and it held no EMA state
    assert step.ema.updates == 0 and all(torch.equal(s, p) for s, p in zip(step.ema.shadow, model.parameters()))
