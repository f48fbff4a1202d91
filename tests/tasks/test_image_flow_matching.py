"""Task `image` with --objective flow-matching: the single-scale image CNF trained by regression on
the logit of the images, evaluated in bits/dim (exact or Hutchinson) and sampled by the CNF code."""

import csv
import json
import math

import pytest
import torch

from odeflow import Adaptive
from odeflow.cli.main import main
from odeflow.flows import FlowMatching
from odeflow.flows.cnf import standard_normal_logprob
from odeflow.flows.evaluation import evaluate_density, image_bits_per_dim
from odeflow.flows.image_transforms import bits_per_dim
from odeflow.flows.multiscale import MultiscaleCNF
from odeflow.tasks.image_config import ImageConfig

TINY = ["--data", "digits", "--hidden", "8", "8", "--batch", "16", "--val-size", "16", "--samples", "4", "--quiet"]
RK4 = ["--val-method", "rk4", "--val-step-size", "0.25", "--step-size", "0.5"]


def test_train_image_by_flow_matching_writes_bits_per_dim_and_the_loss_falls(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "image", *TINY, *RK4, "--objective", "flow-matching", "--iterations", "60"]
    argv += ["--val-every", "60", "--test-max", "24", "--eval-divergence", "exact", "--out", str(run)]
    assert main(argv) == 0
    s = json.loads((run / "summary.json").read_text())
    assert s["objective"] == "flow-matching" and s["test_images"] == 24
    assert s["test_eval_divergence"] == "exact" and s["test_bits_per_dim_solver"] == "rk4 h=0.25"
    assert 0 < s["test_bits_per_dim"] < 30 and s["test_bits_per_dim_se"] > 0 and s["test_nfe"] > 0
    assert s["test_inverse_error"] < 1e-2
    assert "ms_per_iter_flow_matching" in s
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    fm = [float(r["fm_loss"]) for r in rows]
    assert len(fm) == 60 and all(math.isnan(float(r["bits_per_dim"])) for r in rows)
    assert sum(fm[-10:]) / 10 < 0.8 * sum(fm[:10]) / 10  # the regression loss goes down
    assert "flow matching" in capsys.readouterr().out
    grid = tmp_path / "grid.png"
    assert (
        main(["sample", str(run / "last.pt"), "--n", "4", "--out", str(grid), "--method", "rk4", "--step-size", "0.5"])
        == 0
    )
    assert grid.is_file()


def test_flow_matching_then_likelihood_with_hutchinson_test(tmp_path):
    run = tmp_path / "run"
    argv = ["train", "image", *TINY, *RK4, "--objective", "flow-matching", "--iterations", "6"]
    argv += ["--finetune-likelihood", "2", "--val-every", "6", "--test-max", "8"]
    argv += ["--eval-divergence", "hutchinson", "--eval-probes", "3", "--out", str(run)]
    assert main(argv) == 0
    s = json.loads((run / "summary.json").read_text())
    assert s["test_eval_probes"] == 3 and s["test_images"] == 8 and math.isfinite(s["test_bits_per_dim"])
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [math.isnan(float(r["bits_per_dim"])) for r in rows] == [True] * 4 + [False] * 2
    assert {"ms_per_iter_flow_matching", "ms_per_iter_likelihood"} <= set(s)


def _logit(x, alpha):
    s = alpha + (1 - 2 * alpha) * x
    return torch.log(s) - torch.log(1 - s)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("path", ["ot", "vp"])
def test_image_flow_matching_target_is_the_paths_equation(seed, path):
    """L = mean || S f(s S, x_s) - u_s ||^2 with x the flattened logit of the images, x_s and u_s
    written out from the path's equations, f evaluated row by row in the block that holds s S."""
    torch.manual_seed(seed)
    alpha, sigma, T = 0.05, 0.1 * seed, 0.3 + 0.2 * seed
    flow = MultiscaleCNF((1, 4, 4), scales=1, blocks=2, hidden=(6,), pieces=2, T=T, alpha=alpha, zero_init=False)
    flow = flow.double()
    fm = FlowMatching(flow, path=path, sigma_min=sigma, generator=torch.Generator().manual_seed(seed))
    x = torch.rand(7, 1, 4, 4, dtype=torch.float64) * 0.9 + 0.05
    loss = fm.loss(x)[0]

    g = torch.Generator().manual_seed(seed)  # the same draws, in the same order: noise, then s
    y = _logit(x, alpha).reshape(7, -1)
    z = torch.randn(y.shape, dtype=torch.float64, generator=g)
    s = torch.rand(7, dtype=torch.float64, generator=g)
    if path == "ot":
        xs = (1 - s[:, None]) * y + (sigma + (1 - sigma) * s[:, None]) * z
        u = (1 - sigma) * z - y
    else:
        s = 1e-3 + (1 - 1e-3) * s
        B = 0.1 * s + 0.5 * (20 - 0.1) * s**2
        a = torch.exp(-B / 2)[:, None]
        da = -0.5 * (0.1 + s * (20 - 0.1))[:, None] * a
        xs = a * y + torch.sqrt(1 - a**2) * z
        u = da * y - a * da / torch.sqrt(1 - a**2) * z
    T = float(flow.cnfs[0].T)  # the block's end time as stored (T rounded to float32, then doubled)
    S = 2 * T
    rows = []
    for i in range(7):
        t = s[i] * S
        k = 0 if t < T else 1
        rows.append(S * flow.cnfs[k].net(t - k * T, xs[i : i + 1]))
    expected = ((torch.cat(rows) - u) ** 2).mean()
    assert torch.allclose(loss, expected, rtol=1e-11, atol=1e-12)


def test_exact_bits_per_dim_of_a_trained_field_match_the_autograd_jacobian():
    """Train a one-scale image CNF a few steps by flow matching, then compare the exact-trace NLL
    (dopri5 1e-9) with log N(z) + log|det dz/dx| from the autograd Jacobian of the flow map, and
    the Hutchinson estimate with many probes against it (within 4 standard errors)."""
    torch.manual_seed(3)
    flow = MultiscaleCNF((1, 2, 2), scales=1, hidden=(8,), alpha=0.05, zero_init=False, method="dopri5").double()
    fm = FlowMatching(flow)
    opt = torch.optim.Adam(flow.parameters(), lr=1e-2)
    data = lambda n: torch.rand(n, 1, 2, 2, dtype=torch.float64) * 0.5 + 0.25  # noqa: E731
    for _ in range(30):
        opt.zero_grad()
        fm.loss(data(32))[0].backward()
        opt.step()
    x = data(2)
    tight = Adaptive(1e-9, 1e-9)
    exact = evaluate_density(flow, x, "dopri5", tight, divergence="exact", inverse=True)
    flow.set_solver("dopri5", tight)
    ref = []
    for i in range(2):
        fmap = lambda v: flow.push_forward(v.reshape(1, 1, 2, 2)).reshape(4)  # noqa: E731
        J = torch.autograd.functional.jacobian(fmap, x[i].reshape(4))
        zi = fmap(x[i].reshape(4)).reshape(1, 4)
        ref.append(-(standard_normal_logprob(zi) + torch.linalg.slogdet(J)[1]))
    ref_nll = float(torch.cat(ref).detach().mean())
    assert exact["nll"] == pytest.approx(ref_nll, abs=1e-6)
    assert exact["inverse_error"] < 1e-6
    bpd = image_bits_per_dim(exact, 4)
    assert bpd["bits_per_dim"] == pytest.approx(float(bits_per_dim(-torch.cat(ref).detach(), 4).mean()), abs=1e-6)
    hutch = evaluate_density(flow, x, "dopri5", Adaptive(1e-7, 1e-7), divergence="hutchinson", probes=48)
    assert abs(hutch["nll"] - exact["nll"]) < 4 * hutch["nll_se"] + 1e-4


def test_multiscale_flow_matching_is_refused_with_the_flag_that_fixes_it():
    with pytest.raises(ValueError, match="scales=1"):
        FlowMatching(MultiscaleCNF((1, 4, 4), scales=2))
    with pytest.raises(ValueError, match="--scales 1"):
        ImageConfig(objective="flow-matching", scales=2).validate()
    with pytest.raises(ValueError, match="learn_T"):
        ImageConfig(objective="flow-matching", learn_T=True, n_steps=2).validate()
    cfg = ImageConfig(objective="flow-matching")
    cfg.validate()
    assert cfg.scale_count() == 1 and ImageConfig().scale_count() is None
