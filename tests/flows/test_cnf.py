"""Contract tests over CNF configurations (float64, small dims)."""

import pytest
import torch

import odeflow
from odeflow.data import sample_toy
from odeflow.flows import CNF, CNFStack, divergence_exact, divergence_hutchinson, sample_noise
from odeflow.flows.cnf import check_batch
from odeflow.nn import ODENet

TIGHT = odeflow.Adaptive(1e-9, 1e-10)
CONFIGS = {
    "concatsquash-exact-disc": dict(layer="concatsquash", divergence="exact", adjoint=False, train_T=False),
    "concat-hutch-disc-T": dict(layer="concat", divergence="hutchinson", adjoint=False, train_T=True),
    "ignore-exact-adjoint": dict(layer="ignore", divergence="exact", adjoint=True, train_T=False),
    "concatsquash-hutch-adjoint-T": dict(layer="concatsquash", divergence="hutchinson", adjoint=True, train_T=True),
    "control-exact-adjoint": dict(
        layer="concatsquash", divergence="exact", adjoint=True, train_T=False, control_times=[0.0, 0.25, 0.5]
    ),
    "control-hutch-disc-T": dict(
        layer="concat", divergence="hutchinson", adjoint=False, train_T=True, control_times=[0.0, 0.5]
    ),
}


def make_flow(cfg, dim=2, step=TIGHT, method="dopri5", noise="gaussian"):
    net = ODENet(dim, (16, 16), layer=cfg["layer"], activation="tanh", control_times=cfg.get("control_times"))
    return CNF(
        net,
        dim,
        T=0.5,
        train_T=cfg["train_T"],
        divergence=cfg["divergence"],
        noise=noise,
        method=method,
        step=step,
        adjoint=cfg["adjoint"],
    ).double()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_log_prob_shape_and_every_parameter_gets_a_gradient(name):
    flow = make_flow(CONFIGS[name], step=odeflow.Adaptive(1e-6, 1e-6))
    x = torch.randn(7, 2, dtype=torch.float64)
    lp = flow.log_prob(x)
    assert lp.shape == (7,)
    (-lp.mean()).backward()
    for pname, p in flow.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_inverse_of_transform_is_identity(name):
    flow = make_flow(CONFIGS[name])
    x = torch.randn(16, 2, dtype=torch.float64)
    with torch.no_grad():
        z, _ = flow.transform(x)
        assert (flow.inverse(z) - x).norm(dim=1).mean() < 1e-7


@pytest.mark.parametrize("name", ["concatsquash-exact-disc", "control-exact-adjoint"])
@pytest.mark.parametrize("dim", [2, 3])
def test_integrated_divergence_equals_slogdet_of_jacobian(dim, name):
    torch.manual_seed(dim)
    flow = make_flow(CONFIGS[name], dim=dim)
    x = torch.randn(1, dim, dtype=torch.float64)
    _, ld = flow.transform(x)
    jac = torch.autograd.functional.jacobian(
        lambda v: flow.transform(v.reshape(1, dim))[0].reshape(dim), x.reshape(dim)
    )
    sign, logdet = torch.linalg.slogdet(jac)
    assert sign > 0
    assert float(-ld.detach()) == pytest.approx(float(logdet), abs=1e-7)


@pytest.mark.parametrize("noise", ["gaussian", "rademacher"])
def test_hutchinson_is_unbiased(noise):
    net = ODENet(4, (16,), layer="concatsquash").double()
    z = torch.randn(1, 4, dtype=torch.float64, requires_grad=True)
    f = net(torch.tensor(0.3, dtype=torch.float64), z)
    exact = divergence_exact(f, z, False)
    gen = torch.Generator().manual_seed(0)
    draws = torch.stack([divergence_hutchinson(f, z, sample_noise(z, noise, gen), False)[0] for _ in range(4000)])
    se = draws.std() / draws.numel() ** 0.5
    assert abs(float(draws.mean() - exact)) < 4 * float(se)


def test_sampling_gives_finite_values():
    flow = make_flow(CONFIGS["concatsquash-exact-disc"], step=odeflow.FixedStep(0.05), method="rk4")
    with torch.no_grad():
        x = flow.sample(64, generator=torch.Generator().manual_seed(1))
    assert x.shape == (64, 2) and torch.isfinite(x).all()


def test_save_load_round_trip(tmp_path):
    cfg = CONFIGS["concat-hutch-disc-T"] | dict(divergence="exact")
    flow = make_flow(cfg)
    x = torch.randn(8, 2, dtype=torch.float64)
    torch.save(flow.state_dict(), tmp_path / "flow.pt")
    other = make_flow(cfg)
    other.load_state_dict(torch.load(tmp_path / "flow.pt"))
    with torch.no_grad():
        assert torch.equal(flow.log_prob(x), other.log_prob(x))


def test_stack_log_prob_sums_blocks():
    blocks = [make_flow(CONFIGS["concatsquash-exact-disc"]) for _ in range(2)]
    stack = CNFStack(blocks)
    x = torch.randn(5, 2, dtype=torch.float64)
    with torch.no_grad():
        z1, l1 = blocks[0].transform(x)
        z2, l2 = blocks[1].transform(z1)
        expected = -0.5 * (2 * torch.log(torch.tensor(2 * torch.pi, dtype=torch.float64)) + (z2**2).sum(1)) - l1 - l2
        assert torch.allclose(stack.log_prob(x), expected, atol=1e-12)
        assert (stack.inverse(stack.transform(x)[0]) - x).abs().max() < 1e-7


def test_rediscretization_changes_only_the_solver():
    flow = make_flow(CONFIGS["concatsquash-exact-disc"], step=odeflow.FixedStep(0.25), method="rk4")
    x = torch.randn(32, 2, dtype=torch.float64)
    with torch.no_grad():
        coarse = flow.log_prob(x)
        flow.set_solver("dopri5", TIGHT)
        fine = flow.log_prob(x)
    assert flow.last_stats.nfe > 8 and (coarse - fine).abs().max() < 0.1


@pytest.mark.parametrize(
    "bad,match",
    [
        (torch.randn(4, 3), r"shape \[batch, 2\]"),
        (torch.tensor([[0.0, 1.0], [float("nan"), 0.0]]), r"rows \[1\]"),
        (torch.tensor([[0.0, 1.0], [2.0, 0.0], [0.0, -float("inf")]]), r"rows \[2\]"),
        (torch.tensor([[float("inf"), 1.0], [-float("inf"), 0.0]]), r"rows \[0, 1\]"),  # inf - inf: a NaN sum
    ],
)
def test_bad_batches(bad, match):
    flow = make_flow(CONFIGS["concatsquash-exact-disc"])
    with pytest.raises(ValueError, match=match):
        flow.log_prob(bad.double())


def test_finite_rows_whose_sum_overflows_pass_the_check():
    # the batch check sums first (NaN/inf reach the sum); an overflow to inf must not be an error
    x = torch.tensor([[3e38, 3e38], [3e38, 1.0]])
    assert not torch.isfinite(x.sum())
    check_batch(x, 2)


def test_unknown_dataset_lists_valid_ones():
    with pytest.raises(ValueError, match="8gaussians.*checkerboard"):
        sample_toy("gaussians8", 10)


@pytest.mark.parametrize("adjoint", [False, True])
def test_short_training_lowers_test_nll(adjoint):
    torch.manual_seed(0)
    net = ODENet(2, (32, 32), layer="concatsquash")
    flow = CNF(net, 2, T=0.5, divergence="hutchinson", method="rk4", step=odeflow.FixedStep(0.1), adjoint=adjoint)
    test = sample_toy("8gaussians", 512, seed=99)

    def test_nll():
        flow.divergence = "exact"
        with torch.no_grad():
            nll = -flow.log_prob(test).mean().item()
        flow.divergence = "hutchinson"
        return nll

    before = test_nll()
    opt = torch.optim.Adam(flow.parameters(), lr=1e-2)
    for it in range(40):
        opt.zero_grad()
        (-flow.log_prob(sample_toy("8gaussians", 256, seed=it)).mean()).backward()
        opt.step()
    assert test_nll() < before - 0.2


def test_end_time_gradient_agrees_between_modes_and_finite_differences():
    x = torch.randn(6, 2, dtype=torch.float64)
    grads = []
    for adjoint in (False, True):
        torch.manual_seed(5)
        flow = make_flow(dict(layer="concatsquash", divergence="exact", adjoint=adjoint, train_T=True))
        (-flow.log_prob(x).mean()).backward()
        grads.append(float(flow.T.grad))
    eps = 1e-5
    with torch.no_grad():
        values = []
        for sign in (1, -1):
            flow.T.fill_(0.5 + sign * eps)
            values.append(float(-flow.log_prob(x).mean()))
    fd = (values[0] - values[1]) / (2 * eps)
    assert grads[0] == pytest.approx(grads[1], rel=1e-6)
    assert grads[1] == pytest.approx(fd, rel=1e-5)


@pytest.mark.parametrize("divergence", ["exact", "hutchinson"])
def test_checkpointed_cnf_has_the_plain_gradient(divergence):
    """RNODE loss with a trainable T through 3 checkpoint segments = plain Disc-Opt (float64)."""
    grads = []
    for checkpoints in (None, 3):
        torch.manual_seed(0)
        net = ODENet(2, (16, 16), layer="concatsquash", activation="tanh")
        flow = CNF(
            net,
            2,
            T=0.5,
            train_T=True,
            divergence=divergence,
            method="rk4",
            step=odeflow.FixedStep(0.05),
            kinetic=0.1,
            jacobian=0.1,
            checkpoints=checkpoints,
        ).double()
        x = sample_toy("8gaussians", 16, seed=1).double()
        torch.manual_seed(3)  # same Hutchinson noise
        loss, _ = flow.loss(x)
        grads.append(torch.autograd.grad(loss, list(flow.parameters())))
        if checkpoints:
            assert flow.last_stats.nfe_backward > 0
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)


def test_checkpoints_reject_adjoint_and_compile():
    with pytest.raises(ValueError, match="checkpoints"):
        CNF(ODENet(2, (8,)), 2, adjoint=True, checkpoints=2)
