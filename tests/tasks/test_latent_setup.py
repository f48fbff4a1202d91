"""The latent task's engine-free pieces: data choice, splits, losses, evaluation, AUC, figures."""

import math

import pytest
import torch

from odeflow.models import LatentODE, RecurrentRegressor
from odeflow.tasks.latent_setup import (
    LatentSettings,
    build_model,
    evaluate,
    load_data,
    make_task_batch,
    mortality_auc,
    predict,
    summary_features,
    training_loss,
)


def _small(**kw):
    kw.setdefault("n_train", 8)
    kw.setdefault("n_test", 4)
    kw.setdefault("eval_samples", 2)
    kw.setdefault("samples", 2)
    kw.setdefault("step_size", 0.25)
    kw.setdefault("n_points", 20)
    return LatentSettings(**kw)


@pytest.mark.parametrize(
    "bad,match",
    [
        (dict(model="gru"), "valid: latent-ode, ode-rnn, rnn-dt"),
        (dict(data="mnist"), "periodic, physionet, co2"),
        (dict(fraction=0.0), "fraction"),
        (dict(model="rnn-dt", poisson=True), "poisson"),
    ],
)
def test_settings_check(bad, match):
    with pytest.raises(ValueError, match=match):
        LatentSettings(**bad).check()


@pytest.mark.parametrize(
    "model,cls", [("latent-ode", LatentODE), ("ode-rnn", RecurrentRegressor), ("rnn-dt", RecurrentRegressor)]
)
def test_training_loss_and_evaluation_run_for_every_model(model, cls):
    s = _small(model=model, task_kind="extrapolation", fraction=0.5)
    data = load_data(s, seed=0)
    assert (
        len(data.train) == 8
        and len(data.test) == 4
        and data.t_split == pytest.approx(0.5 * float(data.train[0].times[-1]), rel=1e-6)
    )
    net = build_model(s, 1)
    assert isinstance(net, cls)
    tb = make_task_batch(data.train[:3], s, data.t_split, torch.Generator().manual_seed(0))
    loss, metrics = training_loss(net, tb, s, kl_beta=0.5)
    loss.backward()
    assert math.isfinite(float(loss.detach())) and metrics["mse"] > 0
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)
    result = evaluate(net, data.test, s, data.t_split, seed=0)
    assert result["mse"] > 0 and ("elbo" in result) == (model == "latent-ode")


def test_test_mse_counts_only_scored_points():
    """Changing a value the task neither shows nor scores leaves the test MSE unchanged."""
    s = _small(model="rnn-dt", task_kind="extrapolation", fraction=0.5)
    data = load_data(s, seed=0)
    net = build_model(s, 1)
    before = evaluate(net, data.test, s, data.t_split, seed=0)["mse"]
    g = torch.Generator().manual_seed(7919)
    tb = make_task_batch(data.test, s, data.t_split, g)
    hidden = (tb.batch.mask - tb.inp - tb.target)[0, :, 0]  # first-half points not given to the encoder
    i = int(hidden.nonzero()[0])
    t_i = tb.batch.times[i]
    series0 = data.test[0]
    j = int((series0.times == t_i).nonzero()[0])
    series0.values[j, 0] += 100.0
    assert evaluate(net, data.test, s, data.t_split, seed=0)["mse"] == pytest.approx(before, rel=0, abs=0)


def test_prediction_mse_by_hand():
    s = _small(model="ode-rnn", task_kind="interpolation", fraction=0.3)
    data = load_data(s, seed=1)
    net = build_model(s, 1)
    tb = make_task_batch(data.test, s, data.t_split, torch.Generator().manual_seed(1 + 7919))
    pred, _ = predict(net, tb)
    by_hand = ((pred[0] - tb.batch.values) ** 2 * tb.target).sum() / tb.target.sum()
    got = evaluate(net, data.test, s, data.t_split, seed=1)["mse"]
    assert got == pytest.approx(float(by_hand.detach()), rel=1e-5)


def test_csv_data_is_split_and_normalised(tmp_path):
    p = tmp_path / "d.csv"
    rows = ["series,time,variable,value"]
    for k in range(6):
        for i in range(5):
            rows.append(f"s{k},{10 * i + k},v,{100 + k + i}")
    p.write_text("\n".join(rows) + "\n")
    s = _small(data=str(p), test_fraction=0.34)
    data = load_data(s, seed=0)
    assert len(data.train) == 4 and len(data.test) == 2
    vals = torch.cat([x.values for x in data.train])
    assert abs(float(vals.mean())) < 1e-5 and abs(float(vals.std(unbiased=True)) - 1.0) < 1e-5
    spans = [float(x.times[-1] - x.times[0]) for x in data.train + data.test]
    assert max(spans) == pytest.approx(1.0)  # times scaled by 1 / (longest span)


def test_mortality_auc_and_features():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=g)
    y = (x[:, 0] > 0).double()
    auc = mortality_auc(x[:100], y[:100], x[100:], y[100:])
    assert auc > 0.95
    assert mortality_auc(x[:10], torch.zeros(10), x[10:20], y[10:20]) is None
    s = _small(model="latent-ode")
    data = load_data(s, seed=0)
    feats = summary_features(build_model(s, 1), data.test, s, data.t_split, seed=0)
    assert feats.shape == (4, s.latent_dim)


def test_figures_are_written(tmp_path):
    from odeflow.tasks.latent_figures import plot_latent_task

    s = _small(model="latent-ode", poisson=True, task_kind="extrapolation")
    data = load_data(s, seed=0)
    paths = plot_latent_task(
        build_model(s, 1), data.test, s, data.t_split, 0, tmp_path, data.variables, n_series=2, n_dense=30
    )
    assert [p.name for p in paths] == ["predictions.png", "latents.png", "intensity.png"]
    assert all(p.stat().st_size > 1000 for p in paths)


def _physionet_fixture(folder, n=10):
    """n small records in set-a/ and their outcomes; HR runs higher for the deaths."""
    (folder / "set-a").mkdir(parents=True)
    lines = ["RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death"]
    g = torch.Generator().manual_seed(0)
    for k in range(n):
        rid, died = 140000 + k, k % 2
        rows = ["Time,Parameter,Value", f"00:00,RecordID,{rid}", f"00:00,Age,{50 + k}", "00:00,Height,-1"]
        for h in range(0, 48, 6):
            hr = 70 + 30 * died + float(torch.randn(1, generator=g)) * 3
            rows.append(f"{h:02d}:{int(torch.randint(60, (1,), generator=g)):02d},HR,{hr:.1f}")
            if h % 12 == 0:
                rows.append(f"{h:02d}:30,Temp,{36.5 + 0.1 * k:.1f}")
        (folder / "set-a" / f"{rid}.txt").write_text("\n".join(rows) + "\n")
        lines.append(f"{rid},10,3,5,-1,{died}")
    (folder / "Outcomes-a.txt").write_text("\n".join(lines) + "\n")


def test_physionet_pipeline_on_fixture_files(tmp_path):
    _physionet_fixture(tmp_path / "physionet")
    s = _small(
        data="physionet",
        data_dir=str(tmp_path / "physionet"),
        quantization=1.0,
        test_fraction=0.4,
        step_size=0.1,
        hidden=6,
        latent_dim=3,
        field_hidden=8,
    )
    data = load_data(s, seed=0)
    assert len(data.variables) == 41 and len(data.train) == 6 and len(data.test) == 4
    assert all(float(x.times[-1]) <= 1.0 for x in data.train)  # hours / 48
    assert {x.label for x in data.train} == {0.0, 1.0}
    net = build_model(s, 41)
    tb = make_task_batch(data.train, s, data.t_split, torch.Generator().manual_seed(0))
    loss, _ = training_loss(net, tb, s, 1.0)
    loss.backward()
    assert math.isfinite(float(loss.detach()))
    feats = summary_features(net, data.train + data.test, s, data.t_split, seed=0)
    assert feats.shape == (10, 3) and bool(torch.isfinite(feats).all())
    labels = torch.tensor([x.label for x in data.train + data.test])
    auc = mortality_auc(feats[:6], labels[:6], feats[6:], labels[6:])
    assert auc is None or 0.0 <= auc <= 1.0


def test_absolute_times_keep_their_spacing(tmp_path):
    """Unix seconds (float32 spacing 128 s at 1.7e9) were cast to float32 before the shift and the
    scaling: one-minute observations merged. Shifted in float64 first, they keep their spacing."""
    p = tmp_path / "stamps.csv"
    rows = ["series,time,variable,value"]
    for k in range(5):
        rows += [f"s{k},{1_700_000_000 + 3600 * k + 60 * i},v,{i + k}" for i in range(10)]
    p.write_text("\n".join(rows) + "\n")
    data = load_data(_small(data=str(p), test_fraction=0.4), seed=0)
    for x in data.train + data.test:
        gaps = x.times[1:] - x.times[:-1]
        assert x.times.dtype == torch.float32 and len(x.times) == 10
        assert torch.allclose(gaps, torch.full_like(gaps, 1 / 9), rtol=1e-4)  # 60 s of a 540 s span
    assert data.time_origin == 1_700_000_000 and data.time_scale == pytest.approx(1 / 540)
