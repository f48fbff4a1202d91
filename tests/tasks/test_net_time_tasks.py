"""--net-time reversed for `train tabular` and `train image`: the net reads T - t in every block, saved
runs reload to the same field, and the exact log-likelihood of such a field is the change of variables
of its flow map (float64, autograd Jacobian)."""

import json

import numpy as np
import pytest
import torch

from odeflow import Adaptive
from odeflow.cli.main import main
from odeflow.flows import FlowMatching
from odeflow.flows.cnf import standard_normal_logprob
from odeflow.flows.evaluation import evaluate_density
from odeflow.flows.multiscale import MultiscaleCNF
from odeflow.flows.stacked import StackSpec, build_stacked_cnf
from odeflow.nn import ReversedTime
from odeflow.tasks.image import load_image_flow
from odeflow.tasks.image_config import ImageConfig
from odeflow.tasks.tabular import build_tabular_flow, load_tabular_flow
from odeflow.tasks.tabular_config import TabularConfig

TABULAR = ["--iterations", "4", "--val-every", "2", "--batch", "40", "--blocks", "2", "--layers", "1"]
TABULAR += ["--multiplier", "2", "--T", "0.5", "--step-size", "0.25", "--dtype", "float64", "--quiet"]
IMAGE = ["--data", "digits", "--hidden", "8", "8", "--batch", "16", "--val-size", "16", "--samples", "4"]
IMAGE += ["--val-method", "rk4", "--val-step-size", "0.25", "--step-size", "0.5", "--quiet"]


def _table(tmp_path):
    rng = np.random.RandomState(0)
    path = tmp_path / "tiny.csv"
    x = rng.randn(300, 3) @ np.diag([0.5, 1.0, 1.5])
    np.savetxt(path, x, delimiter=",", header="a,b,c", comments="")
    return path


@pytest.mark.parametrize(
    "cls, values, message",
    [
        (TabularConfig, dict(net_time="backwards"), "unknown net_time 'backwards'"),
        (TabularConfig, dict(net_time="reversed", train_T=True), "drop train_T"),
        (ImageConfig, dict(net_time="reversed", learn_T=True, n_steps=4, step_size=None), "drop --learn-T"),
    ],
)
def test_net_time_mistakes_are_named(cls, values, message):
    with pytest.raises(ValueError, match=message):
        cls(**values).validate()


def test_tabular_run_with_reversed_net_time_reloads_to_its_own_test_nll(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "tabular", "--data", str(_table(tmp_path)), *TABULAR, "--net-time", "reversed"]
    assert main(argv + ["--eval-divergence", "exact", "--out", str(run)]) == 0
    summary = json.loads((run / "summary.json").read_text())
    flow, cfg = load_tabular_flow(run / "best.pt")
    assert cfg.net_time == "reversed"
    assert all(isinstance(b.net, ReversedTime) and b.net.T == 0.5 for b in flow.cnfs)
    capsys.readouterr()
    assert main(["evaluate", str(run), "--json", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == summary["test_rows"] and result["divergence"] == "exact"
    assert result["nll"] == pytest.approx(summary["test_nll"], rel=1e-12, abs=1e-12)
    # the same weights read at t instead of T - t give another density: the reload must rebuild the field
    plain = build_tabular_flow(TabularConfig(**{**cfg.__dict__, "net_time": "t"}), 3)
    plain.load_state_dict({k.replace(".net.net.", ".net."): v for k, v in flow.state_dict().items()})
    for b in plain.cnfs:
        b.divergence = "exact"
    x = torch.randn(8, 3, dtype=torch.float64)
    with torch.no_grad():
        assert (flow.log_prob(x) - plain.log_prob(x)).abs().max() > 1e-6
    samples = tmp_path / "samples.npy"
    assert main(["sample", str(run), "--n", "5", "--out", str(samples)]) == 0  # sampled through the same field
    assert np.isfinite(np.load(samples)).all() and np.load(samples).shape == (5, 3)


def test_image_run_with_reversed_net_time_evaluates_to_its_summary_exact_and_by_hutchinson(tmp_path, capsys):
    """Flow matching with the net reading T - t; `odeflow evaluate` with the exact trace gives the task's
    own exact test bits/dim (same images and noise, same solver); Hutchinson with many probes lands within
    a few standard errors; without --eval-divergence an image run is scored by one Hutchinson probe."""
    run = tmp_path / "run"
    argv = ["train", "image", *IMAGE, "--objective", "flow-matching", "--net-time", "reversed"]
    argv += ["--iterations", "4", "--val-every", "4", "--test-max", "12", "--eval-divergence", "exact"]
    assert main(argv + ["--out", str(run)]) == 0
    summary = json.loads((run / "summary.json").read_text())
    flow, cfg = load_image_flow(run / "last.pt")
    assert cfg.net_time == "reversed" and all(isinstance(b.net, ReversedTime) for b in flow.cnfs)
    capsys.readouterr()

    def evaluate(*extra):
        assert main(["evaluate", str(run / "last.pt"), "--n", "12", "--json", "--quiet", *extra]) == 0
        return json.loads(capsys.readouterr().out)

    exact = evaluate("--eval-divergence", "exact")
    assert exact["n"] == summary["test_images"] and exact["solver"] == summary["test_bits_per_dim_solver"]
    assert exact["test_bits_per_dim"] == pytest.approx(summary["test_bits_per_dim"], rel=1e-6)
    assert exact["test_bits_per_dim_se"] == pytest.approx(summary["test_bits_per_dim_se"], rel=1e-4)
    assert exact["nfe"] == summary["test_nfe"] and exact["inverse_error"] < 1e-3
    torch.manual_seed(0)
    hutch = evaluate("--eval-divergence", "hutchinson", "--eval-probes", "64")
    assert hutch["divergence"] == "hutchinson" and hutch["probes"] == 64
    assert abs(hutch["test_bits_per_dim"] - exact["test_bits_per_dim"]) < 4 * hutch["test_bits_per_dim_se"]
    default = evaluate()
    assert default["divergence"] == "hutchinson" and default["probes"] == 1
    other = evaluate("--eval-divergence", "exact", "--seed", "7")  # fresh dequantization noise
    assert other["test_bits_per_dim"] != exact["test_bits_per_dim"]


def _fit(flow, data, steps=20):
    fm = FlowMatching(flow, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(flow.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        fm.loss(data())[0].backward()
        opt.step()


def test_reversed_tabular_stack_exact_log_likelihood_equals_the_jacobian_of_its_flow_map():
    torch.manual_seed(2)
    spec = StackSpec(blocks=2, layers=1, multiplier=4, activation="tanh", T=0.7)
    tight = Adaptive(1e-10, 1e-10)
    flow = build_stacked_cnf(3, spec, "dopri5", tight, divergence="exact", net_time="reversed").double()
    assert all(isinstance(b.net, ReversedTime) and b.net.T == 0.7 for b in flow.cnfs)
    _fit(flow, lambda: torch.randn(32, 3, dtype=torch.float64) * torch.tensor([0.5, 1.0, 2.0]) + 1.0)
    x = torch.randn(3, 3, dtype=torch.float64)
    logp = flow.log_prob(x).detach()
    for i in range(3):
        J = torch.autograd.functional.jacobian(lambda v: flow.push_forward(v.reshape(1, 3)).reshape(3), x[i])
        z = flow.push_forward(x[i : i + 1]).detach()
        sign, logdet = torch.linalg.slogdet(J)
        assert sign > 0
        assert float(logp[i]) == pytest.approx(float(standard_normal_logprob(z) + logdet), abs=1e-7)


def test_reversed_one_scale_image_flow_exact_log_likelihood_equals_the_jacobian_of_its_flow_map():
    torch.manual_seed(3)
    flow = MultiscaleCNF(
        (1, 2, 2), scales=1, hidden=(8,), alpha=0.05, zero_init=False, method="dopri5", net_time="reversed", T=0.8
    ).double()
    assert isinstance(flow.cnfs[0].net, ReversedTime) and flow.config["net_time"] == "reversed"
    _fit(flow, lambda: torch.rand(32, 1, 2, 2, dtype=torch.float64) * 0.5 + 0.25)
    x = torch.rand(2, 1, 2, 2, dtype=torch.float64) * 0.5 + 0.25
    tight = Adaptive(1e-10, 1e-10)
    exact = evaluate_density(flow, x, "dopri5", tight, divergence="exact")
    flow.set_solver("dopri5", tight)
    ref = []
    for i in range(2):
        fmap = lambda v: flow.push_forward(v.reshape(1, 1, 2, 2)).reshape(4)  # noqa: E731
        J = torch.autograd.functional.jacobian(fmap, x[i].reshape(4))
        ref.append(-(standard_normal_logprob(fmap(x[i].reshape(4)).reshape(1, 4)) + torch.linalg.slogdet(J)[1]))
    assert exact["nll"] == pytest.approx(float(torch.cat(ref).detach().mean()), abs=1e-7)
