"""The cheaper per-step pieces of the Trainer: the fused Adam update (the same algorithm as
torch's single-tensor loop, to rounding), the gradient check without clipping, the plain
zeroing of gradients, and the toy generator's reseeded RandomState (the same streams)."""

import math

import numpy as np
import pytest
import torch

from odeflow.data.toy2d import TOY_DATASETS, sample_toy
from odeflow.tasks.cnf2d_config import CNFConfig
from odeflow.training.optim import fused_applies, make_optimizer
from odeflow.training.trainer import all_finite


def _quadratic_problem(seed, dtype=torch.float64):
    """Random parameters (several shapes) and a random convex quadratic loss in them."""
    g = torch.Generator().manual_seed(seed)
    shapes = [(4, 3), (3,), (1, 5), (2, 2, 2)]
    params = [torch.nn.Parameter(torch.randn(s, generator=g, dtype=dtype)) for s in shapes]
    n = sum(p.numel() for p in params)
    a = torch.randn(n, n, generator=g, dtype=dtype)
    q, b = a @ a.T / n + 0.1 * torch.eye(n, dtype=dtype), torch.randn(n, generator=g, dtype=dtype)

    def loss():
        v = torch.cat([p.reshape(-1) for p in params])
        return 0.5 * v @ q @ v - b @ v

    return params, loss


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
@pytest.mark.parametrize("seed", range(3))
def test_fused_update_follows_the_single_tensor_update(optimizer, seed):
    runs = []
    for fused in (True, False):
        params, loss = _quadratic_problem(seed)
        cfg = CNFConfig(optimizer=optimizer, lr=3e-2, weight_decay=1e-3 * seed)
        opt = make_optimizer(cfg, params, fused=fused)
        assert bool(opt.param_groups[0]["fused"]) is fused
        for _ in range(40):
            opt.zero_grad(set_to_none=True)
            loss().backward()
            opt.step()
        runs.append(torch.cat([p.detach().reshape(-1) for p in params]))
    assert torch.allclose(runs[0], runs[1], rtol=1e-12, atol=1e-12)


def test_fused_only_where_it_applies():
    cpu = [torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))]
    assert fused_applies(cpu) and not fused_applies(cpu, cuda_graph=True) and not fused_applies([])
    assert not fused_applies([torch.nn.Parameter(torch.zeros(2, device="meta"))])
    assert not fused_applies([torch.nn.Parameter(torch.zeros(2, dtype=torch.complex64))])
    assert make_optimizer(CNFConfig(optimizer="adam"), cpu).param_groups[0]["fused"]
    assert not make_optimizer(CNFConfig(optimizer="adam"), cpu, fused=False).param_groups[0]["fused"]
    assert isinstance(make_optimizer(CNFConfig(optimizer="sgd"), cpu), torch.optim.SGD)


@pytest.mark.parametrize("seed", range(4))
def test_all_finite_finds_any_nan_or_inf_and_changes_no_value(seed, monkeypatch):
    g = torch.Generator().manual_seed(seed)

    def refuse(*args):
        raise RuntimeError("not for these tensors")

    for fused in (True, False):  # the fused check, and the per-tensor check it falls back to
        if not fused:
            monkeypatch.setattr(torch, "_amp_foreach_non_finite_check_and_unscale_", refuse)
        dtypes = [torch.float32, torch.float64][: 1 + seed % 2]
        tensors = [
            torch.randn(int(n), generator=g, dtype=dtypes[k % len(dtypes)]) * 10.0 ** float(k)
            for k, n in enumerate(torch.randint(1, 50, (5,), generator=g))
        ]
        before = [t.clone() for t in tensors]
        assert all_finite(tensors)
        assert all(torch.equal(a, b) for a, b in zip(tensors, before))
        for bad in (math.nan, math.inf, -math.inf):
            k = int(torch.randint(0, 5, (1,), generator=g))
            i = int(torch.randint(0, tensors[k].numel(), (1,), generator=g))
            broken = [t.clone() for t in tensors]
            broken[k][i] = bad
            assert not all_finite(broken)
        assert all_finite([torch.full((3,), 3e38), torch.full((2,), 3e38)])  # huge but finite


def test_the_trainer_step_starts_every_iteration_without_gradients():
    """The step sets every theta gradient to None before the loss (no accumulation)."""
    from odeflow.tasks.run import build_task
    from odeflow.training import Trainer

    cfg = CNFConfig(objective="flow-matching", iterations=4, schedule=None, val_size=8, test_max=8, ema=0.0)
    task = build_task("cnf", cfg)
    seen = []
    loss_of = task.training_loss

    def watched(x):
        seen.append([p.grad is None for p in task.parameters()])
        return loss_of(x)

    task.training_loss = watched  # type: ignore[method-assign]
    Trainer(task, None, quiet=True).fit()
    assert len(seen) == 4 and all(all(row) for row in seen)
    assert all(p.grad is not None for p in task.parameters())  # the last step's gradient is kept


@pytest.mark.parametrize("name", sorted(TOY_DATASETS))
def test_sample_toy_draws_the_stream_of_a_fresh_random_state(name):
    for seed in (0, 5, 2**31 - 1):
        expected = torch.as_tensor(TOY_DATASETS[name](np.random.RandomState(seed), 97), dtype=torch.float32)
        assert torch.equal(sample_toy(name, 97, seed=seed), expected)
    first = sample_toy(name, 33, seed=11)
    sample_toy(name, 500, seed=12)  # another draw in between leaves nothing behind
    assert torch.equal(sample_toy(name, 33, seed=11), first)


def test_progress_postfix_is_throttled_and_ends_on_the_last_values(capsys, monkeypatch):
    from odeflow.training import progress

    clock = iter([0.0, 0.01, 0.02, 0.3, 0.31])
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    bar = progress.Progress(5, enabled=True)
    shown = []
    monkeypatch.setattr(bar.bar, "set_postfix", lambda d, refresh=False: shown.append(dict(d)))
    for k in range(5):
        bar.update({"loss": float(k)})
    assert [d["loss"] for d in shown] == ["0", "3"]  # at 0 s and 0.3 s, not every iteration
    bar.close()
    assert shown[-1]["loss"] == "4" and bar.bar.n == 5
    quiet = progress.Progress(5, enabled=False)
    quiet.update({"loss": 1.0})
    quiet.close()
