"""Random-feature CDE classifier: its features against an explicit per-series, per-window loop of
midpoint steps (float64, 1e-10), batch independence and a series that ends early, seeded
determinism and a state dict without the random weights, a ridge readout above chance on random
two-class series, and the errors of bad settings."""

import math

import pytest
import torch

from helpers.series_batches import (
    one_thread,  # noqa: F401  (an autouse fixture)
    smooth_batch,
    two_class_series,
)
from odeflow.data.irregular import collate
from odeflow.models.logsignature import interpolate_linear, window_logsignatures
from odeflow.models.ncde import control_channels
from odeflow.models.ode_solver import ODESolver
from odeflow.models.random_cde import RandomCDEClassifier, default_readings, reservoir_units
from odeflow.models.ridge import fit_ridge_classifier
from odeflow.solvers.stepping import FixedStep

READINGS = ((1, 5), (3, 2))


def _net(times, seed=0, shifts=2, readings=READINGS, units=6, method="euler"):
    span = float(times[-1] - times[0])
    solver = ODESolver(method, FixedStep(1.0))
    return RandomCDEClassifier(2, 3, readings, span, float(times[0]), units, 0.3, seed, shifts=shifts, solver=solver)


def _explicit(net, times, values, mask, method="euler"):
    """Features series by series, segment by segment, window by window (one Euler or midpoint step)."""
    x = control_channels(times, values, mask, 0.3)
    R, out = net.units, []
    for b in range(values.shape[0]):
        seen = mask[b].amax(-1) > 0
        first, last = float(times[seen][0]), float(times[seen][-1])
        row = []
        for i, (S, m) in enumerate(net.readings):
            A, bias, P = net.field(i)
            end, n_seg, total, pos, n_win = (torch.zeros(R, dtype=torch.float64), 0, 0, 0, 0)
            end = torch.zeros(R, dtype=torch.float64)
            total, pos = torch.zeros_like(end), torch.zeros_like(end)
            shifts = net.shifts if S > 1 else 1
            for sh in range(shifts):
                length = float(net.span) / S
                o = float(net.origin) - sh / shifts * length
                a = math.floor((float(times[0]) - o) / length + 1e-9)
                c = max(a + 1, math.ceil((float(times[-1]) - o) / length - 1e-9))
                edges = o + length * a + length / m * torch.arange((c - a) * m + 1, dtype=torch.float64)
                assert edges[0] <= times[0] and edges[-1] >= times[-1]
                logsig = window_logsignatures(times, x[b : b + 1], edges)[0]
                for seg in range(c - a):
                    z = interpolate_linear(times, x[b : b + 1], edges[seg * m : seg * m + 1])[0, 0] @ P
                    any_valid = False
                    for k in range(seg * m, seg * m + m):
                        L = logsig[k]

                        def f(z, L=L):
                            return sum(
                                torch.tanh(z @ A[:, c * R : (c + 1) * R] + bias[c * R : (c + 1) * R]) * L[c]
                                for c in range(L.shape[0])
                            )

                        z = z + (f(z) if method == "euler" else f(z + 0.5 * f(z)))
                        lo, hi = float(edges[k]), float(edges[k + 1])
                        if (lo < last and hi > first) or (lo <= first and hi >= last):
                            any_valid = True
                            total, pos, n_win = total + z, pos + (z > 0).double(), n_win + 1
                    if any_valid:
                        end, n_seg = end + z, n_seg + 1
            row += [end / max(n_seg, 1), total / max(n_win, 1), pos / max(n_win, 1)]
        out.append(torch.cat(row))
    return torch.stack(out)


@pytest.mark.parametrize("seed,method", [(0, "euler"), (1, "euler"), (2, "midpoint")])
def test_features_match_an_explicit_loop(seed, method):
    times, values, mask = smooth_batch(seed)
    net = _net(times, seed, method=method)
    net.path.fit([(values, mask)])
    got = net.features(times, values, mask)
    R = net.reservoir_features
    assert got.shape == (3, net.num_features) and R == 3 * 6 * 2 and net.num_features == R + 6 * 16 * 2
    assert torch.allclose(got[:, :R], _explicit(net, times, values, mask, method), atol=1e-10, rtol=0)
    assert torch.equal(got[:, R:], net.path(values, mask))  # the path block (tests/models/test_path_ppv.py)
    assert got.abs().sum() > 0


def test_batch_independence_and_a_series_that_ends_early():
    """Each row equals the series alone on the batch's grid, in row chunks of any size; series 0
    (ends early) equals itself alone on its own times."""
    times, values, mask = smooth_batch(5)
    net = _net(times, 5)
    batch = net.features(times, values, mask)
    for b in range(3):
        alone = net.features(times, values[b : b + 1], mask[b : b + 1], rows=1)
        assert torch.allclose(batch[b : b + 1], alone, atol=1e-12, rtol=0)
    last = int(mask[0].sum(-1).nonzero().max())
    short = net.features(times[: last + 1], values[:1, : last + 1], mask[:1, : last + 1])
    assert torch.allclose(batch[:1], short, atol=1e-12, rtol=0)


def test_seeded_and_the_random_weights_are_not_stored():
    times, values, mask = smooth_batch(6)
    a, b, c = _net(times, 3), _net(times, 3), _net(times, 4)
    fa = a.features(times, values, mask)
    assert torch.equal(fa, b.features(times, values, mask))
    assert not torch.allclose(fa, c.features(times, values, mask))
    assert not any(k.startswith("field") for k in a.state_dict())
    labels = torch.tensor([0, 1, 2, 1, 0, 2])
    fit = fit_ridge_classifier(torch.cat([fa, fa + 0.1 * torch.randn_like(fa)]), labels, 3)
    a.set_readout(fit)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a(times, values, mask), b(times, values, mask))


def test_ridge_on_random_features_beats_chance():
    train, test = two_class_series(96, 1), two_class_series(60, 2)
    net = RandomCDEClassifier(1, 2, default_readings(8), 1.0, 0.0, units=64, count_scale=1 / 24, seed=0)
    b = collate(train)
    net.path.fit([(b.values, b.mask)])
    fit = fit_ridge_classifier(
        net.features(b.times, b.values, b.mask), b.labels.long(), 2, split=net.reservoir_features
    )
    net.set_readout(fit)
    t = collate(test)
    accuracy = float((net(t.times, t.values, t.mask).argmax(-1) == t.labels.long()).double().mean())
    assert accuracy >= 0.8


def test_layout_and_errors():
    assert default_readings(40) == ((1, 40), (10, 4), (5, 8)) and default_readings(6) == ((1, 6),)
    assert reservoir_units(256, 6) == 256 and reservoir_units(256, 325) ** 2 * 325 <= 2**23
    times, values, mask = smooth_batch(0)
    with pytest.raises(ValueError, match="no readout yet"):
        _net(times)(times, values, mask)
    with pytest.raises(ValueError, match="span must be"):
        RandomCDEClassifier(2, 3, READINGS, 0.0)
    with pytest.raises(ValueError, match="readings must be"):
        RandomCDEClassifier(2, 3, ((0, 4),), 1.0)
    with pytest.raises(ValueError, match="shifts must be"):
        RandomCDEClassifier(2, 3, READINGS, 1.0, shifts=0)
    with pytest.raises(ValueError, match=r"values must be \[B, T, 2\]"):
        _net(times).features(times, values[..., :1], mask[..., :1])
