"""experiments/latent_claim.py: the tuning rule (lowest mean validation MSE over complete seed
sets, the same for every model), the table, and a short run on PhysioNet-format records."""

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

_spec = importlib.util.spec_from_file_location(
    "latent_claim", Path(__file__).resolve().parents[1] / "experiments" / "latent_claim.py"
)
latent_claim = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(latent_claim)


def _row(model, lr, seed, val, test, kind="grid"):
    return dict(
        key=f"physionet:extrapolation|{model}|lr={lr}|w20|seed={seed}|{kind}",
        kind=kind,
        data="physionet",
        task="extrapolation",
        model=model,
        lr=lr,
        seed=seed,
        hidden=20,
        val_mse=val,
        test_mse=test,
        train_mse_last20=test,
        s_per_iter=0.1,
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_selection_by_mean_validation_not_test(tmp_path, seed):
    g = torch.Generator().manual_seed(seed)
    rows = []
    for model in latent_claim.MODELS:
        good = float(torch.rand(1, generator=g))  # the lr with the better validation MSE, per model
        for lr in latent_claim.LRS:
            base = 0.2 if lr == latent_claim.LRS[int(good > 0.5)] else 0.5
            for s in range(3):
                # the worse-validation grid point has the better test MSE: selection must ignore test
                rows.append(_row(model, lr, s, base + 0.01 * s, 0.9 - base + 0.01 * s))
    rows.append(_row("ode-rnn", 1e-4, 0, 0.0001, 0.0001))  # one seed only: not a complete grid point
    (tmp_path / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = list(latent_claim.done_keys(tmp_path).values())
    for model in latent_claim.MODELS:
        best, rs = latent_claim.selected(done, "physionet:extrapolation", model)
        assert len(rs) == 3 and math.isclose(sum(r["val_mse"] for r in rs) / 3, 0.21)
        assert "lr=0.0001" not in best
    text = latent_claim.table(tmp_path)
    assert text.splitlines()[3].count("0.710 ± 0.010") == 3  # physionet extrapolation row: test of the selected point


def test_short_run_on_physionet_format(tmp_path, monkeypatch):
    from odeflow.data.physionet_synthetic import write_synthetic_physionet

    monkeypatch.setattr(latent_claim, "PHYSIONET_DIR", tmp_path / "p")
    write_synthetic_physionet(tmp_path / "p", n_records=30, seed=0)
    for model in ("latent-ode", "rnn-dt"):
        s = latent_claim.settings_for("physionet", "extrapolation", model, 0.5, "w20", hidden=8, field_hidden=8)
        r = latent_claim.run(s, iterations=3, lr=1e-2, seed=0, batch=4)
        assert (r["n_train"], r["n_val"], r["n_test"]) == (22, 2, 6)
        assert all(math.isfinite(r[k]) and r[k] > 0 for k in ("val_mse", "test_mse", "s_per_iter"))
