"""Task `latent` with each series on its own times (`per_sample`): the encoder's per-row input
view, predictions equal to each series alone (float64), and short runs through the CLI."""

from __future__ import annotations

import json
from typing import List

import pytest
import torch

from odeflow.cli.main import main
from odeflow.data.irregular import Series
from odeflow.tasks.latent_config import LatentSettings
from odeflow.tasks.latent_setup import build_model, input_rows, make_task_batch, predict

from .test_latent import TINY

F64 = torch.float64


def _series(gen: torch.Generator, D: int = 2) -> List[Series]:
    """Series of random lengths on random times in [0, 2] (one point before 0.5 at least)."""
    out = []
    for _ in range(5):
        n = int(torch.randint(3, 9, (1,), generator=gen))
        t = torch.cat(
            [0.4 * torch.rand(1, generator=gen, dtype=F64), 0.5 + 1.5 * torch.rand(n - 1, generator=gen, dtype=F64)]
        )
        t = torch.sort(t).values + 1e-3 * torch.arange(n, dtype=F64)
        mask = (torch.rand(n, D, generator=gen) < 0.7).to(F64)
        mask[:, 0] = 1.0
        out.append(Series(t, torch.randn(n, D, generator=gen, dtype=F64), mask))
    return out


def test_input_rows_moves_each_rows_inputs_to_its_front() -> None:
    gen = torch.Generator().manual_seed(0)
    times = torch.cumsum(torch.rand(4, 7, generator=gen, dtype=F64) + 0.1, dim=1)
    values = torch.randn(4, 7, 2, generator=gen, dtype=F64)
    inp = (torch.rand(4, 7, 1, generator=gen) < 0.5).to(F64).expand(4, 7, 2).clone()
    inp[3] = 0.0  # a row without any input keeps one unobserved time
    t, v, m, lengths = input_rows(times, values, inp)
    assert bool((t[:, 1:] > t[:, :-1]).all())
    for b in range(4):
        keep = inp[b].sum(-1) > 0
        n = int(keep.sum())
        assert int(lengths[b]) == max(n, 1)
        if n:
            assert torch.equal(t[b, :n], times[b, keep]) and torch.equal(v[b, :n], values[b, keep])
        assert float(m[b, n:].abs().sum()) == 0.0


@pytest.mark.parametrize("model", ["latent-ode", "ode-rnn", "rnn-dt"])
@pytest.mark.parametrize("task", ["interpolation", "extrapolation"])
def test_per_sample_predictions_equal_each_series_alone(model: str, task: str) -> None:
    """All points as input (fraction 1: deterministic masks), posterior means: every row of the
    per-sample batch predicts what the series predicts alone on its own times."""
    gen = torch.Generator().manual_seed(3)
    series = _series(gen)
    s = LatentSettings(
        model=model, task_kind=task, fraction=1.0, per_sample=True, rtol=1e-10, atol=1e-12, latent_dim=3,
        hidden=6, field_hidden=8, poisson=model == "latent-ode",
    )  # fmt: skip
    torch.manual_seed(0)
    net = build_model(s, 2).to(F64)
    tb = make_task_batch(series, s, 0.5, torch.Generator().manual_seed(0))
    assert tb.batch.lengths is not None
    pred, out = predict(net, tb, 2, sample=False)
    for i, one in enumerate(series):
        alone = make_task_batch([one], s, 0.5, torch.Generator().manual_seed(0), per_sample=False)
        p, o = predict(net, alone, 2, sample=False)
        n = one.times.shape[0]
        torch.testing.assert_close(pred[:, i, :n], p[:, 0], rtol=0, atol=1e-9)
        if out is not None and out.integral is not None:
            torch.testing.assert_close(out.integral[:, i], o.integral[:, 0], rtol=0, atol=1e-9)


@pytest.mark.parametrize("model,extra", [("latent-ode", ["--poisson"]), ("ode-rnn", ["--mode", "opt-disc"])])
def test_a_short_per_sample_latent_run(model, extra, tmp_path):
    run = tmp_path / "run"
    argv = ["train", "latent", "--model", model, "--data", "periodic", "--task", "extrapolation", "--fraction", "0.5"]
    code = main([*argv, "--iterations", "2", "--val-every", "1", "--out", str(run), "--per-sample", *TINY, *extra])
    assert code == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["iterations"] == 2 and summary["test_mse"] > 0
    assert (run / "predictions.png").is_file()
