"""`odeflow.training.ema.EMA`: the update recursion with its warmup, the swap of the averaged
weights in and out, the state round trip, and the mistakes."""

import math

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
    offset = float(torch.empty(()).uniform_(1.5, 60.0, generator=gen))
    model = ODENet(3, [5]).double()
    start = [p.detach().clone() for p in model.parameters()]
    trail = random_steps(model, 30, gen)
    expected = start
    for n, params in enumerate(trail, start=1):
        beta = min(decay, (1 + n) / (offset + n)) if warmup else decay
        expected = [beta * e + (1 - beta) * p for e, p in zip(expected, params)]
    # the EMA updated after each step, replayed from the start
    model2 = ODENet(3, [5]).double()
    with torch.no_grad():
        for p, s in zip(model2.parameters(), start):
            p.copy_(s)
    ema = EMA(model2, decay, warmup=warmup, warmup_offset=offset)
    for params in trail:
        with torch.no_grad():
            for p, v in zip(model2.parameters(), params):
                p.copy_(v)
        ema.update()
    assert ema.updates == 30
    for got, want in zip(ema.shadow, expected):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_warmup_trails_a_linear_drift_by_n_plus_1_over_w_steps(seed):
    """theta_n = theta_0 + n v: before the cap the average trails by (n + 1)/w steps of drift
    (exactly, up to prod_k (1 + k)/(w + k) from the start), so a larger offset lags less."""
    gen = torch.Generator().manual_seed(seed)
    model = nn.Linear(3, 2).double()
    v = [torch.randn(p.shape, generator=gen, dtype=torch.float64) for p in model.parameters()]
    lags = {}
    for w in sorted(float(x) for x in torch.empty(3).uniform_(5.0, 60.0, generator=gen)):
        m = nn.Linear(3, 2).double()
        m.load_state_dict(model.state_dict())
        ema = EMA(m, 0.999, warmup_offset=w)
        for _ in range(1, 301):
            with torch.no_grad():
                for p, d in zip(m.parameters(), v):
                    p.add_(d)
            ema.update()
        assert ema.rate(300) < 0.999  # still warming up
        for p, s, d in zip(m.parameters(), ema.shadow, v):
            torch.testing.assert_close(p - s, (301 / w) * d, rtol=1e-9, atol=1e-12)
        lags[w] = float((m.weight.detach() - ema.shadow[0]).norm())
    ordered = [lags[w] for w in sorted(lags)]
    assert ordered == sorted(ordered, reverse=True)


@pytest.mark.parametrize("seed", [0, 1])
def test_warmup_meets_the_fixed_decay_rule_after_the_cap(seed):
    """From n* = (w decay - 1)/(1 - decay) on, beta_n = decay, and the warmed-up average closes
    in on the fixed-decay one by the factor decay per update (their difference obeys d_n = decay d_(n-1))."""
    gen = torch.Generator().manual_seed(10 + seed)
    decay = float(torch.empty(()).uniform_(0.8, 0.95, generator=gen))
    w = float(torch.empty(()).uniform_(2.0, 20.0, generator=gen))
    cap = (w * decay - 1) / (1 - decay)
    model = ODENet(2, [4]).double()
    warm, fixed = EMA(model, decay, warmup_offset=w), EMA(model, decay, warmup=False)
    assert warm.rate(1) == pytest.approx(2 / (1 + w)) and warm.rate(1) < decay
    assert all((warm.rate(n) == decay) == (n >= cap) for n in range(1, int(cap) + 50))
    diffs = []
    for _ in range(1, int(cap) + 60):
        random_steps(model, 1, gen)
        warm.update()
        fixed.update()
        diffs.append(torch.cat([(a - b).flatten() for a, b in zip(warm.shadow, fixed.shadow)]))
    first = int(math.ceil(cap))  # update n = first + 1 is the first with beta = decay on both sides
    for n in range(first + 1, len(diffs)):
        torch.testing.assert_close(diffs[n], decay * diffs[n - 1], rtol=1e-9, atol=1e-12)
    assert float(diffs[-1].norm()) < 1e-2 * float(diffs[first - 1].norm())


@pytest.mark.parametrize("offset", [1.0, 0.5, -3, True, "10"])
def test_bad_warmup_offset_is_refused(offset):
    with pytest.raises(ValueError, match="offset must be a number > 1"):
        EMA(nn.Linear(2, 2), 0.9, warmup_offset=offset)


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
