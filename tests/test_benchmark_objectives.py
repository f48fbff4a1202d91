"""benchmarks/cnf_objectives.py: the checkpoint grid, the per-seed summary and `--merge`."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import cnf_objectives as co  # noqa: E402


def test_toy_checkpoints_are_dense_early_and_increasing():
    grid = np.array(co.CHECKPOINTS)
    assert np.all(np.diff(grid) > 0)
    early = grid[grid <= 5.0]
    np.testing.assert_allclose(early, 0.25 * np.arange(1, 21))


def _curves(rng, seeds):
    """Random decreasing NLL curves on the grid: (time, iteration, value, nfe) rows."""
    out = []
    for seed in range(seeds):
        times = np.cumsum(rng.uniform(0.2, 0.3, size=30))
        values = 4.0 - np.cumsum(rng.uniform(0.0, 0.1, size=30))
        curve = [(float(t), 100 * (k + 1), float(v), 50) for k, (t, v) in enumerate(zip(times, values))]
        out.append(dict(name="e", seed=seed, iterations=3000, seconds=float(times[-1]), ms_per_iter=1.0, curve=curve))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_summary_gives_mean_and_half_range_of_first_hits(seed):
    rng = np.random.default_rng(seed)
    results = _curves(rng, 3)
    target = float(np.median([r["curve"][15][2] for r in results]))
    hits = []
    for r in results:  # the first checkpoint at or below the target, found independently
        values = np.array([row[2] for row in r["curve"]])
        k = int(np.argmax(values <= target))
        assert values[k] <= target
        hits.append(r["curve"][k][0])
    text = co.summarize(results, [target], None)
    row = next(line for line in text.splitlines() if line.startswith("| e |"))
    expected = f"{np.mean(hits):.2f} ± {(max(hits) - min(hits)) / 2:.2f}"
    assert expected in row
    finals = [r["curve"][-1][2] for r in results]
    assert f"{np.mean(finals):.3f} ± {(max(finals) - min(finals)) / 2:.3f}" in row


def test_a_seed_that_never_reaches_a_target_is_shown_as_never():
    results = _curves(np.random.default_rng(0), 2)
    text = co.summarize(results, [0.0], None)
    assert "never, never" in text


def _write(path, clock, results):
    data = dict(data="8gaussians", unit="nats")
    path.write_text(json.dumps(dict(results=results, targets=[3.0], true_nll=2.9, data=data, clock=clock)))
    return path


def test_merge_summarizes_seed_files_and_refuses_mixed_clocks(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(1)
    a, b = _curves(rng, 2)
    b["seed"] = 1
    fa, fb = _write(tmp_path / "a.json", "cpu", [a]), _write(tmp_path / "b.json", "cpu", [b])
    monkeypatch.setattr(sys, "argv", ["cnf_objectives.py", "--merge", str(fa), str(fb)])
    co.main()
    out = capsys.readouterr().out
    assert out.startswith("cpu clock")
    assert "| e | 2 |" in out
    _write(fb, "wall", [b])
    with pytest.raises(ValueError, match="clocks"):
        co.main()


@pytest.mark.parametrize("seed", range(3))
def test_values_at_checkpoints_are_mean_and_half_range_of_each_seeds_value(seed):
    rng = np.random.default_rng(10 + seed)
    results = []
    for s in range(3):  # evaluations land a little past each grid point, as the harness's do
        curve = [(g + float(rng.uniform(0, 0.03)), 100 * g, float(rng.normal(30 - g, 1)), 44) for g in (2, 5, 10)]
        results.append(dict(name="e", seed=s, iterations=1000, seconds=10.0, ms_per_iter=5.0, curve=curve))
    text = co.values_at_checkpoints(results, "bits/dim")
    assert "bits/dim at 2 s | bits/dim at 5 s | bits/dim at 10 s" in text
    row = next(line for line in text.splitlines() if line.startswith("| e |")).split(" | ")
    for k in range(3):
        vals = [r["curve"][k][2] for r in results]
        assert row[2 + k] == f"{np.mean(vals):.3f} ± {(max(vals) - min(vals)) / 2:.3f}"
