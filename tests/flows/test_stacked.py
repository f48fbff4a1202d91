"""The Table-3 stacked CNF and the shipped configs; whole-flow log-det against slogdet."""

from pathlib import Path

import pytest
import tomllib
import torch

import odeflow
from odeflow.flows.stacked import StackSpec, build_stacked_cnf

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
# seed 000 Table 3: (activation, nh, m, s, T, Disc-Opt h) and the data dimension
TABLE3 = {
    "power": ("tanh", 3, 10, 5, 5.0, 0.10, 6),
    "gas": ("tanh", 3, 20, 5, 5.0, 0.10, 8),
    "hepmass": ("softplus", 2, 10, 10, 2.0, 0.10, 21),
    "miniboone": ("softplus", 2, 20, 1, 1.0, 0.25, 43),
    "bsds300": ("softplus", 3, 20, 2, 2.0, 0.05, 63),
}


@pytest.mark.parametrize("name", sorted(TABLE3))
def test_config_builds_the_table3_model(name):
    cfg = tomllib.loads((CONFIGS / f"{name}.toml").read_text())
    act, nh, m, s, T, h, d = TABLE3[name]
    spec = StackSpec.from_dict(cfg["model"])
    assert (spec.activation, spec.layers, spec.multiplier, spec.blocks, spec.T) == (act, nh, m, s, T)
    assert cfg["disc-opt"]["step_size"] == h and cfg["disc-opt"]["method"] == "rk4"
    assert (cfg["opt-disc"]["method"], cfg["opt-disc"]["rtol"], cfg["opt-disc"]["atol"]) == ("dopri5", 1e-6, 1e-8)
    flow = build_stacked_cnf(d, spec)
    assert len(flow.blocks) == s
    widths = [(layer.linear.in_features, layer.linear.out_features) for layer in flow.blocks[0].net.layers]
    assert widths == [(d, m * d)] + [(m * d, m * d)] * (nh - 1) + [(m * d, d)]


@pytest.mark.parametrize("name", ["digits", "breast_cancer"])
def test_builtin_configs_exist_and_build(name):
    cfg = tomllib.loads((CONFIGS / f"{name}.toml").read_text())
    assert cfg["data"] == name
    flow = build_stacked_cnf({"digits": 64, "breast_cancer": 30}[name], StackSpec.from_dict(cfg["model"]))
    assert flow.dim == {"digits": 64, "breast_cancer": 30}[name]


def test_bad_spec_is_an_error():
    with pytest.raises(ValueError, match="unknown model keys \\['width'\\]"):
        StackSpec.from_dict({"width": 3})
    with pytest.raises(ValueError, match="unknown model.activation 'relu'"):
        StackSpec(activation="relu")


def test_stack_log_det_equals_slogdet_of_the_whole_flow():
    torch.manual_seed(3)
    dim = 4
    flow = build_stacked_cnf(
        dim,
        StackSpec(blocks=2, layers=2, multiplier=3, activation="softplus", T=0.7),
        method="dopri5",
        step=odeflow.Adaptive(1e-10, 1e-11),
        divergence="exact",
    ).double()
    x = torch.randn(3, dim, dtype=torch.float64)
    _, ld = flow.transform(x)
    for b in range(3):
        jac = torch.autograd.functional.jacobian(lambda v: flow.push_forward(v.reshape(1, dim)).reshape(dim), x[b])
        sign, logdet = torch.linalg.slogdet(jac)
        assert sign > 0
        assert float(-ld[b].detach()) == pytest.approx(float(logdet), abs=1e-7)


def test_evaluate_stack_nll_matches_log_prob_and_restores_the_solver():
    from odeflow.flows.stacked import evaluate_stack

    torch.manual_seed(4)
    flow = build_stacked_cnf(
        3, StackSpec(blocks=2, layers=1, multiplier=4, T=0.5), method="rk4", step=odeflow.FixedStep(0.25)
    ).double()
    x = torch.randn(10, 3, dtype=torch.float64)
    tight = odeflow.Adaptive(1e-9, 1e-10)
    result = evaluate_stack(flow, x, "dopri5", tight, chunk=4)
    for b in flow.blocks:
        assert (b.method, b.step, b.divergence) == ("rk4", odeflow.FixedStep(0.25), "hutchinson")
        b.set_solver("dopri5", tight)
        b.divergence = "exact"
    with torch.no_grad():
        assert result["nll"] == pytest.approx(float(-flow.log_prob(x).mean()), abs=1e-10)
    assert result["inverse_error"] < 1e-8 and result["nfe"] > 0
