"""`--ema DECAY` on the flow tasks: the averaged weights are saved beside the trained ones, a
resumed run continues the average exactly, the test NLL and the loaders use the average, and
the default (flow matching: on; likelihood: off)."""

import json
from dataclasses import asdict

import pytest
import torch

from odeflow.cli.main import main
from odeflow.data.toy2d import sample_toy
from odeflow.flows.evaluation import evaluate_density
from odeflow.solvers.stepping import Adaptive
from odeflow.tasks.cnf2d import load_flow
from odeflow.tasks.cnf2d_config import CNFConfig
from odeflow.tasks.image import build_image_flow, load_image_flow
from odeflow.tasks.image_config import ImageConfig
from odeflow.tasks.objective_config import FM_EMA_DECAY, FM_EMA_WARMUP
from odeflow.tasks.tabular import build_tabular_flow, tabular_flow_from_state
from odeflow.tasks.tabular_config import TabularConfig
from odeflow.training.checkpoint import load_checkpoint, save_checkpoint
from odeflow.training.ema import EMA, ema_steps

BASE = ["train", "cnf", "--objective", "flow-matching", "--hidden", "8", "8", "--batch", "32", "--lr", "1e-2"]
BASE += ["--val-size", "32", "--test-max", "32", "--val-every", "3", "--quiet"]


@pytest.mark.slow  # three short CLI runs with their evaluations: ~10 s on a quiet machine
def test_resumed_average_equals_the_straight_run_and_the_test_uses_it(tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main([*BASE, "--ema", "0.8", "--iterations", "6", "--out", str(straight)]) == 0
    assert main([*BASE, "--ema", "0.8", "--iterations", "3", "--out", str(resumed)]) == 0
    assert main(["train", "cnf", "--resume", str(resumed), "--iterations", "6", "--quiet"]) == 0
    a, b = load_checkpoint(straight / "last.pt"), load_checkpoint(resumed / "last.pt")
    ema_a, ema_b = a["auxiliary"]["ema"], b["auxiliary"]["ema"]
    assert ema_a["updates"] == ema_b["updates"] == 6 and ema_a["decay"] == 0.8
    assert ema_a["warmup_offset"] == FM_EMA_WARMUP  # the flow tasks' warmup
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert all(torch.equal(ema_a["shadow"][k], ema_b["shadow"][k]) for k in ema_a["shadow"])
    first = next(k for k in ema_a["shadow"] if k.endswith("layers.0.linear.weight"))  # net or ReversedTime(net)
    assert not torch.equal(ema_a["shadow"][first], a["model"][first])
    # the loader gives the averaged field, and it is what the run's test NLL was computed with
    flow, cfg = load_flow(straight / "last.pt")
    assert torch.equal(flow.state_dict()[first], ema_a["shadow"][first])
    x_test = sample_toy(cfg.data, 32, seed=20_000 + cfg.seed)
    r = evaluate_density(flow, x_test, "dopri5", Adaptive(1e-5, 1e-5))
    summary = json.loads((straight / "summary.json").read_text())
    assert r["nll"] == pytest.approx(summary["test_nll_dopri5"], rel=1e-6) and summary["ema"] == 0.8


def test_default_is_on_for_flow_matching_and_off_for_likelihood():
    assert CNFConfig(objective="flow-matching").ema_decay() == FM_EMA_DECAY
    assert TabularConfig(objective="flow-matching").ema_decay() == FM_EMA_DECAY
    assert CNFConfig().ema_decay() == 0.0 and CNFConfig(ema=0.5).ema_decay() == 0.5
    assert CNFConfig(objective="flow-matching", ema=0).ema_decay() == 0.0
    model = torch.nn.Linear(2, 2)
    assert ema_steps(model, 0.0, model.parameters()) == {}
    assert list(ema_steps(model, 0.9, model.parameters())) == ["ema"]
    assert ema_steps(model, 0.9, model.parameters(), 30.0)["ema"].ema.offset == 30.0  # type: ignore[attr-defined]


@pytest.mark.slow  # a CLI run with its validation and test: ~3-7 s
def test_a_two_iteration_flow_matching_run_saves_its_average_with_the_tasks_warmup(tmp_path):
    out = tmp_path / "run"
    assert main([*BASE, "--iterations", "2", "--out", str(out)]) == 0
    ema = load_checkpoint(out / "last.pt")["auxiliary"]["ema"]
    assert ema["warmup_offset"] == FM_EMA_WARMUP and ema["decay"] == FM_EMA_DECAY and ema["updates"] == 2


def shifted_average(flow):
    """An EMA state whose average differs from the flow's weights (each parameter + 0.25)."""
    ema = EMA(flow, 0.9)
    for s in ema.shadow:
        s.add_(0.25)
    return ema


def test_tabular_and_image_loaders_read_the_average(tmp_path):
    cfg = TabularConfig(data="digits", objective="flow-matching", blocks=1, layers=1, multiplier=1)
    flow = build_tabular_flow(cfg, 3)
    ema = shifted_average(flow)
    state = dict(kind="tabular", config=asdict(cfg), model=flow.state_dict(), auxiliary=dict(ema=ema.state_dict()))
    loaded, _ = tabular_flow_from_state(state)
    got = dict(loaded.named_parameters())
    assert all(torch.equal(got[n], s) for n, s in zip(ema.names, ema.shadow))
    icfg = ImageConfig(data="digits", objective="flow-matching", scales=1, hidden=[4], blocks=1)
    iflow = build_image_flow(icfg)
    iema = shifted_average(iflow)
    path = save_checkpoint(
        dict(kind="image", config=asdict(icfg), model=iflow.state_dict(), auxiliary=dict(ema=iema.state_dict())),
        tmp_path / "best.pt",
    )
    iloaded, _ = load_image_flow(path)
    got = dict(iloaded.named_parameters())
    assert all(torch.equal(got[n], s) for n, s in zip(iema.names, iema.shadow))


@pytest.mark.parametrize("ema", [1.0, -0.5])
def test_bad_decay_is_refused(ema):
    with pytest.raises(ValueError, match=r"ema .* \[0, 1\)"):
        CNFConfig(objective="flow-matching", ema=ema).validate()
