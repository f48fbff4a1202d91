"""Flow matching: paths, couplings, the per-sample-time net, the loss, and a trained field
evaluated by the CNF code (float64)."""

import itertools

import pytest
import torch

import odeflow
from odeflow.data import sample_toy
from odeflow.flows import CNF, CNFStack, FlowMatching, OTPath, VPPath, ot_permutation
from odeflow.flows.cnf import standard_normal_logprob
from odeflow.nn import ODENet, ReversedTime


def make_cnf(dim=2, hidden=(32, 32), T=1.0, layer="concatsquash", seed=0):
    torch.manual_seed(seed)
    net = ODENet(dim, hidden, layer=layer, activation="tanh")
    return CNF(net, dim, T=T, divergence="exact", method="dopri5", step=odeflow.Adaptive(1e-8, 1e-8)).double()


@pytest.mark.parametrize("path", [OTPath(0.0), OTPath(0.1), VPPath()], ids=["ot", "ot-sigma", "vp"])
@pytest.mark.parametrize("seed", range(3))
def test_path_velocity_is_the_derivative_of_the_point(path, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(20, 3, dtype=torch.float64, generator=g)
    z = torch.randn(20, 3, dtype=torch.float64, generator=g)
    s = 0.02 + 0.96 * torch.rand(20, dtype=torch.float64, generator=g)
    h = 1e-6
    plus, _ = path.point_and_velocity(x, z, s + h)
    minus, _ = path.point_and_velocity(x, z, s - h)
    _, u = path.point_and_velocity(x, z, s)
    assert torch.allclose(u, (plus - minus) / (2 * h), rtol=1e-6, atol=1e-6)


def test_ot_path_ends_at_data_and_noise():
    x, z = torch.randn(5, 2, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    path = OTPath(0.05)
    start, _ = path.point_and_velocity(x, z, torch.zeros(5, dtype=torch.float64))
    end, _ = path.point_and_velocity(x, z, torch.ones(5, dtype=torch.float64))
    assert torch.allclose(start, x + 0.05 * z) and torch.allclose(end, z)
    vp = VPPath()
    near, _ = vp.point_and_velocity(x, z, torch.zeros(5, dtype=torch.float64))
    assert torch.allclose(near, x, atol=1e-5)
    assert vp.end_alpha() < 0.01


@pytest.mark.parametrize("layer", ["concatsquash", "concat", "ignore"])
def test_per_sample_time_equals_row_by_row_scalar_time(layer):
    net = ODENet(3, (8, 8), layer=layer).double()
    x = torch.randn(6, 3, dtype=torch.float64)
    t = torch.rand(6, dtype=torch.float64)
    rows = torch.cat([net(t[i], x[i : i + 1]) for i in range(6)])
    assert torch.allclose(net(t, x), rows, rtol=1e-13, atol=1e-13)
    # one time for the batch still works as before, 0-d or one element
    assert torch.allclose(net(t[0], x), net(t[:1], x))


def test_per_sample_time_mistakes_are_clear():
    net = ODENet(2, (8,))
    with pytest.raises(ValueError, match="one per sample"):
        net(torch.rand(3), torch.randn(5, 2))
    ctrl = ODENet(2, (8,), control_times=[0.0, 1.0])
    with pytest.raises(ValueError, match="control_times"):
        ctrl(torch.rand(5), torch.randn(5, 2))


@pytest.mark.parametrize("backend", ["scipy", "pot"])
@pytest.mark.parametrize("seed", range(5))
def test_minibatch_ot_lowers_the_pairing_cost_and_is_optimal(seed, backend):
    if backend == "pot":
        pytest.importorskip("ot")
    g = torch.Generator().manual_seed(seed)
    x, z = torch.randn(64, 2, generator=g) * 3, torch.randn(64, 2, generator=g)
    perm = ot_permutation(x, z, backend)
    assert sorted(perm.tolist()) == list(range(64))
    cost = lambda p: float(((x - z[p]) ** 2).sum())  # noqa: E731
    assert cost(perm) < cost(torch.arange(64))
    xs, zs = x[:6], z[:6]
    best = min(float(((xs - zs[list(p)]) ** 2).sum()) for p in itertools.permutations(range(6)))
    assert float(((xs - zs[ot_permutation(xs, zs, backend)]) ** 2).sum()) == pytest.approx(best, rel=1e-6)


@pytest.mark.parametrize("path,sigma", [("ot", 0.0), ("ot", 0.1), ("vp", 0.0)])
def test_loss_regresses_the_scaled_path_velocity(path, sigma):
    flow = make_cnf(T=0.5)
    x = torch.randn(32, 2, dtype=torch.float64)
    fm = FlowMatching(flow, path=path, sigma_min=sigma, generator=torch.Generator().manual_seed(3))
    loss, parts = fm.loss(x)
    g = torch.Generator().manual_seed(3)
    z = torch.randn(x.shape, dtype=x.dtype, generator=g)
    s_min = fm.path.s_min
    s = s_min + (1 - s_min) * torch.rand(32, dtype=x.dtype, generator=g)
    xs, u = fm.path.point_and_velocity(x, z, s)
    expected = ((0.5 * flow.net(0.5 * s, xs) - u) ** 2).mean()
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-12)
    assert float(parts["fm_loss"]) == pytest.approx(float(loss.detach()))


def test_mistakes_are_clear():
    flow = make_cnf()
    with pytest.raises(ValueError, match="coupling"):
        FlowMatching(flow, coupling="sinkhorn")
    with pytest.raises(ValueError, match="path"):
        FlowMatching(flow, path="cosine")
    with pytest.raises(TypeError, match="CNF"):
        FlowMatching(torch.nn.Linear(2, 2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shape"):
        FlowMatching(flow).loss(torch.randn(4, 3, dtype=torch.float64))


def test_stack_field_routes_each_time_to_its_block():
    blocks = [make_cnf(T=0.5, seed=k) for k in range(3)]
    stack = CNFStack(blocks)
    fm = FlowMatching(stack)
    assert fm.total_time == pytest.approx(1.5)
    t = torch.tensor([0.1, 0.7, 1.2, 1.5, 0.49], dtype=torch.float64)
    x = torch.randn(5, 2, dtype=torch.float64)
    out = fm.field(t, x)
    for i, (k, local) in enumerate([(0, 0.1), (1, 0.2), (2, 0.2), (2, 0.5), (0, 0.49)]):
        ref = blocks[k].net(torch.tensor(local, dtype=torch.float64), x[i : i + 1])
        assert torch.allclose(out[i : i + 1], ref, atol=1e-12)
    loss, _ = fm.loss(torch.randn(64, 2, dtype=torch.float64))
    loss.backward()
    for name, p in stack.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def train_fm(flow, data, iterations, coupling="independent", path="ot", seed=0):
    fm = FlowMatching(flow, path=path, coupling=coupling, generator=torch.Generator().manual_seed(seed))
    opt = torch.optim.Adam(flow.parameters(), lr=3e-3)
    for it in range(iterations):
        x = sample_toy(data, 256, seed=1000 * seed + it).double()
        loss, _ = fm.loss(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return flow


def exact_nll(flow, x):
    with torch.no_grad():
        z, logdet = flow.transform(x)
    return float(-(standard_normal_logprob(z) - logdet).mean())


@pytest.mark.parametrize(
    "coupling,path",
    [
        ("independent", "ot"),
        pytest.param("minibatch-ot", "ot", marks=pytest.mark.slow),
        pytest.param("independent", "vp", marks=pytest.mark.slow),
    ],
)
def test_short_training_beats_the_untrained_field_in_exact_nll(coupling, path):
    x_test = sample_toy("8gaussians", 300, seed=99).double()
    flow = make_cnf(hidden=(64, 64))
    flow.method, flow.step = "rk4", odeflow.FixedStep(0.1)
    before = exact_nll(flow, x_test)
    train_fm(flow, "8gaussians", 150, coupling=coupling, path=path)
    after = exact_nll(flow, x_test)
    # the true density scores 2.82; the untrained field scores about 6
    assert after < before - 1.0, (before, after)
    assert after < 4.5, after


def test_exact_log_likelihood_of_a_trained_field_equals_slogdet_of_the_flow_jacobian():
    flow = make_cnf(dim=2)
    train_fm(flow, "checkerboard", 30)
    flow.step = odeflow.Adaptive(1e-9, 1e-10)
    for seed in range(3):
        x = sample_toy("checkerboard", 1, seed=seed).double()
        _, ld = flow.transform(x)
        jac = torch.autograd.functional.jacobian(lambda v: flow.transform(v.reshape(1, 2))[0].reshape(2), x.reshape(2))
        sign, logdet = torch.linalg.slogdet(jac)
        assert sign > 0
        assert float(-ld.detach()) == pytest.approx(float(logdet), abs=1e-7)


@pytest.mark.parametrize("T,data", [pytest.param(1.0, "checkerboard", marks=pytest.mark.slow), (0.6, "8gaussians")])
def test_reversed_net_time_field_exact_log_likelihood_equals_slogdet_of_the_flow_jacobian(T, data):
    """A field whose net reads T - t (`ReversedTime`), trained by flow matching through it: the
    CNF's exact instantaneous change of variables equals log|det dz/dx| by autograd, and the
    flow-matching loss regresses S net(S - s S, x_s) on the path velocity."""
    torch.manual_seed(1)
    net = ODENet(2, (32, 32), layer="concatsquash", activation="tanh")
    field = ReversedTime(net, T)
    flow = CNF(field, 2, T=T, divergence="exact", method="dopri5", step=odeflow.Adaptive(1e-8, 1e-9)).double()
    x = torch.randn(16, 2, dtype=torch.float64)
    fm = FlowMatching(flow, generator=torch.Generator().manual_seed(5))
    loss, _ = fm.loss(x)
    S = fm.total_time  # T as the flow stores it
    g = torch.Generator().manual_seed(5)
    z = torch.randn(x.shape, dtype=x.dtype, generator=g)
    s = torch.rand(16, dtype=x.dtype, generator=g)
    expected = ((S * net(T - s * S, (1 - s[:, None]) * x + s[:, None] * z) - (z - x)) ** 2).mean()
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-12)
    train_fm(flow, data, 30)
    for seed in range(2):
        x = sample_toy(data, 1, seed=seed).double()
        _, ld = flow.transform(x)
        jac = torch.autograd.functional.jacobian(lambda v: flow.transform(v.reshape(1, 2))[0].reshape(2), x.reshape(2))
        sign, logdet = torch.linalg.slogdet(jac)
        assert sign > 0
        assert float(-ld.detach()) == pytest.approx(float(logdet), abs=1e-6)


def test_reversed_time_reads_the_net_at_T_minus_t_and_names_a_bad_T():
    torch.manual_seed(0)
    net = ODENet(3, (8,)).double()
    x = torch.randn(5, 3, dtype=torch.float64)
    t = torch.rand(5, dtype=torch.float64)
    assert torch.equal(ReversedTime(net, 0.7)(t, x), net(0.7 - t, x))
    with pytest.raises(ValueError, match="T must be > 0"):
        ReversedTime(net, 0.0)
