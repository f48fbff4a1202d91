"""GraphedStep: clear errors without CUDA; on a GPU, replays equal the eager training loop."""

import pytest
import torch
from torch import nn

import odeflow
from odeflow.training.cuda_graph import GraphedStep

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


class Field(nn.Module):
    def __init__(self, dim=4, width=32):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, width), nn.Tanh(), nn.Linear(width, dim))

    def forward(self, t, y):
        return self.net(y)


def make(device):
    torch.manual_seed(0)
    field = Field().to(device)
    opt = torch.optim.Adam(field.parameters(), lr=1e-2, capturable=device != "cpu")
    t = torch.tensor([0.0, 0.5, 1.0])  # host times: no device copies per solve

    def step(y0, target):
        ys = odeflow.solve(field, y0, t, method="rk4", step=odeflow.FixedStep(0.05), check_finite=False).ys
        loss = (ys[-1] - target).pow(2).mean()
        loss.backward()
        opt.step()
        return loss

    return field, opt, step


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only message")
def test_needs_cuda():
    field, opt, step = make("cpu")
    with pytest.raises(RuntimeError, match="CUDA"):
        GraphedStep(step, [torch.zeros(2, 4), torch.zeros(2, 4)], opt)


@cuda
def test_rejects_cpu_tensors_and_non_capturable_optimizers():
    field, opt, step = make("cpu")
    with pytest.raises(ValueError, match="CUDA device"):
        GraphedStep(step, [torch.zeros(2, 4), torch.zeros(2, 4)], opt)
    field = Field().cuda()
    with pytest.raises(ValueError, match="capturable"):
        GraphedStep(
            step, [torch.zeros(2, 4, device="cuda")] * 2, torch.optim.Adam(field.parameters(), capturable=False)
        )


@cuda
def test_replays_equal_the_eager_loop():
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(64, 4, generator=g).cuda(), torch.randn(64, 4, generator=g).cuda()) for _ in range(6)]
    field_a, opt_a, step_a = make("cuda")
    eager = []
    for y0, target in batches:
        opt_a.zero_grad(set_to_none=True)
        eager.append(float(step_a(y0, target)))
    field_b, opt_b, step_b = make("cuda")
    graphed = GraphedStep(step_b, batches[0], opt_b)
    replayed = [float(graphed(y0, target)) for y0, target in batches]
    assert replayed == pytest.approx(eager, rel=1e-4, abs=1e-6)
    for a, b in zip(field_a.parameters(), field_b.parameters()):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)


@cuda
def test_fixed_step_solve_has_no_host_syncs():
    field = Field().cuda()
    y0 = torch.randn(8, 4, device="cuda")
    t = torch.tensor([0.0, 1.0])
    odeflow.solve(field, y0, t, method="rk4", step=odeflow.FixedStep(0.1))  # builds and caches the grid
    torch.cuda.set_sync_debug_mode("error")
    try:
        ys = odeflow.solve(field, y0, t, method="rk4", step=odeflow.FixedStep(0.1), check_finite=False).ys
        ys[-1].sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_cuda_graph_setting_needs_a_gpu_device_and_a_constant_lr():
    from odeflow.training import TrainingConfig

    with pytest.raises(ValueError, match="--device cuda"):
        TrainingConfig(cuda_graph=True, device="cpu").validate()
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainingConfig(cuda_graph=True, device="cuda", lr_schedule="cosine").validate()


@pytest.mark.parametrize(
    "over, reason",
    [
        (dict(mode="opt-disc"), "adjoint"),
        (dict(step_size=None), "adaptive"),
        (dict(learn_T=True), "learnable end time"),
        (dict(schedule=[dict(until=5, method="dopri5")]), "adaptive"),
        (dict(compile="on"), "compile"),
        ({}, None),
    ],
)
def test_cnf_task_says_when_its_step_can_be_captured(over, reason):
    from odeflow.tasks.cnf2d import CNF2DTask, CNFConfig

    problem = CNF2DTask(CNFConfig(**over)).cuda_graph_problem()
    assert (problem is None) if reason is None else (reason in problem)


def test_cli_refuses_cuda_graph_on_cpu(tmp_path, capsys):
    from odeflow.cli.main import main

    assert main(["train", "cnf", "--cuda-graph", "--iterations", "2", "--quiet", "--out", str(tmp_path / "r")]) == 2
    assert "--device cuda" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@cuda
def test_cnf_training_with_cuda_graph_follows_the_eager_run(tmp_path):
    from odeflow.cli.main import main
    from odeflow.training.run_folder import read_metrics

    common = [
        "train",
        "cnf",
        "--device",
        "cuda",
        "--divergence",
        "exact",
        "--step-size",
        "0.125",
        "--kinetic",
        "0.01",
        "--jacobian",
        "0.01",
        "--iterations",
        "8",
        "--val-every",
        "4",
        "--quiet",
    ]
    assert main(common + ["--out", str(tmp_path / "eager")]) == 0
    assert main(common + ["--cuda-graph", "--out", str(tmp_path / "graph")]) == 0
    eager, graph = (read_metrics(tmp_path / name / "metrics.csv") for name in ("eager", "graph"))
    assert [r["loss"] for r in graph] == pytest.approx([r["loss"] for r in eager], rel=1e-4)
    val = [[r["val_nll"] for r in rows if r["val_nll"] == r["val_nll"]] for rows in (eager, graph)]  # not NaN
    assert len(val[0]) == 2 and val[1] == pytest.approx(val[0], rel=1e-4)
