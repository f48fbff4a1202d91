"""Sequence classifiers: shapes, masked values never matter, GRU baselines independent of the
other series in a batch, GRU-D's imputation decays to the mean."""

import pytest
import torch

from odeflow.data.irregular import Series, collate
from odeflow.models.gru_d import ObservationGRU
from odeflow.models.sequence_classifiers import SEQUENCE_MODELS, last_observed, make_sequence_classifier


def _batch(seed, B=4, T=12, D=3):
    g = torch.Generator().manual_seed(seed)
    times = torch.cumsum(torch.rand(T, generator=g) * 0.1 + 0.01, 0)
    values = torch.randn(B, T, D, generator=g)
    mask = (torch.rand(B, T, D, generator=g) < 0.6).float()
    mask[:, 0, 0] = 1.0
    return times, values, mask


@pytest.mark.parametrize("kind", SEQUENCE_MODELS)
def test_masked_values_do_not_matter(kind):
    torch.manual_seed(0)
    times, values, mask = _batch(1)
    net = make_sequence_classifier(kind, 3, 5, hidden=8, field_hidden=8, latent_dim=4, reservoir=8).eval()
    run = net.features if kind == "random-cde" else net  # random-cde: no readout before its fit
    if kind == "random-cde":
        net.path.fit([(values, mask)])  # the path PPV's thresholds (models/path_ppv.py)
    other = torch.where(mask > 0, values, torch.full_like(values, 1e3))
    with torch.no_grad():
        a, b = run(times, values, mask), run(times, other, mask)
    assert a.shape == ((4, 72 + 6 * 16 * 3) if kind == "random-cde" else (4, 5)) and torch.isfinite(a).all()
    assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("kind", ["gru-dt", "gru-d"])
def test_gru_state_ignores_the_rest_of_the_batch(kind):
    torch.manual_seed(2)
    net = make_sequence_classifier(kind, 2, 3, hidden=6).eval()
    g = torch.Generator().manual_seed(3)
    series = [
        Series(
            torch.sort(torch.rand(n, generator=g)).values + 0.01 * torch.arange(n),
            torch.randn(n, 2, generator=g),
            torch.ones(n, 2),
        )
        for n in (5, 9, 3)
    ]
    b = collate(series)
    with torch.no_grad():
        together = net(b.times, b.values, b.mask)
        alone = torch.cat([net(s.times, s.values[None], s.mask[None]) for s in series])
    assert torch.allclose(together, alone, atol=1e-5)


def test_gru_d_input_decay():
    """With w_x = 1, b_x = 0: x̂ = γ x_last + (1-γ) mean, γ = exp(-δ); check via a hook on the cell."""
    net = ObservationGRU(1, 4, "gru-d", mean=torch.tensor([2.0]))
    with torch.no_grad():
        net.decay_x_w.fill_(1.0)
    seen = []
    net.cell.register_forward_hook(lambda m, inp, out: seen.append(inp[0].detach().clone()))
    times = torch.tensor([0.0, 0.5, 1.5])
    values = torch.tensor([[[5.0], [0.0], [7.0]]])
    mask = torch.tensor([[[1.0], [0.0], [1.0]]])
    # the middle time is unobserved for the only series: no step there
    net(times, values, mask)
    assert len(seen) == 3 and torch.allclose(seen[0], torch.tensor([[5.0, 1.0]]))
    values2 = torch.cat([values, torch.tensor([[[0.0]]])], 1)
    mask2 = torch.cat([mask, torch.tensor([[[0.0]]])], 1)
    two = torch.cat([mask2, torch.ones_like(mask2)])  # a second, fully observed series
    seen.clear()
    net(torch.tensor([0.0, 0.5, 1.5, 2.0]), torch.cat([values2, values2]), two)
    gamma = torch.exp(torch.tensor(-0.5))  # 0.5 after the last observation at 1.5
    expect = gamma * 7.0 + (1 - gamma) * 2.0
    assert torch.allclose(seen[3][0, 0], expect, atol=1e-6) and seen[3][0, 1] == 0


def test_last_observed():
    mask = torch.zeros(2, 5, 1)
    mask[0, 1] = 1
    mask[0, 3] = 1
    mask[1, 0] = 1
    assert last_observed(mask).tolist() == [3, 0]


def test_bad_kind():
    with pytest.raises(ValueError, match="unknown sequence model"):
        make_sequence_classifier("lstm", 2, 3)
    with pytest.raises(ValueError, match=">= 2 classes"):
        make_sequence_classifier("gru-d", 2, 1)
