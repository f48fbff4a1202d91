"""Series classification with each series on its own times (per_sample with an adaptive ODE solve):
evaluation equals each series evaluated alone, a short run learns, and the settings are checked."""

from __future__ import annotations

import pytest
import torch

from odeflow.tasks.sequence_classify import (
    build_sequence_classifier,
    evaluate_sequences,
    load_sequence_data,
    train_sequence_classify,
)
from odeflow.tasks.sequence_classify_config import SequenceClassifyConfig

from .test_sequence_classify import _write_csv


@pytest.mark.parametrize("model,seed", [("ode-rnn", 0), ("latent-ode", 1)])
def test_per_sample_evaluation_equals_each_series_alone(tmp_path, model, seed):
    """float64 model, tight tolerance: a chunk of series on their own times gives each series'
    loss and prediction of the series evaluated alone (its own union grid)."""
    cfg = SequenceClassifyConfig(
        model=model, data=str(_write_csv(tmp_path / "s.csv", seed)), ode_rtol=1e-9, per_sample=True, seed=seed
    )
    data = load_sequence_data(cfg, torch.float64)
    torch.manual_seed(seed)
    net = build_sequence_classifier(cfg, data).to(torch.float64)
    series = data.test[:10]
    ce_rows, pred_rows, _ = evaluate_sequences(net, series, per_sample=True)
    ce_alone, pred_alone, _ = evaluate_sequences(net, series, chunk=1)
    ce_union, _, _ = evaluate_sequences(net, series)
    torch.testing.assert_close(ce_rows, ce_alone, rtol=0, atol=1e-7)
    assert torch.equal(pred_rows, pred_alone)
    if model == "latent-ode":  # the union grid's reverse encoder starts at the batch's last time
        assert float((ce_union - ce_alone).abs().max()) > 1e-6


@pytest.mark.slow
def test_a_short_per_sample_run_learns(tmp_path):
    cfg = SequenceClassifyConfig(
        model="ode-rnn",
        data=str(_write_csv(tmp_path / "s.csv", 3)),
        iterations=40,
        batch=8,
        val_every=20,
        seed=3,
        test_fraction=0.25,
        hidden=16,
        field_hidden=16,
        ode_rtol=1e-3,
        per_sample=True,
    )
    s = train_sequence_classify(cfg, None, progress=False)
    assert s["test_accuracy"] >= 0.8


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(model="ode-rnn", per_sample=True), "give ode_rtol"),
        (dict(model="gru-d", per_sample=True, ode_rtol=1e-3), "ode-rnn or latent-ode"),
        (dict(model="ncde", ode_rtol=1e-3), "ode-rnn or latent-ode"),
    ],
)
def test_per_sample_settings_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SequenceClassifyConfig(iterations=1, **kwargs).validate()
