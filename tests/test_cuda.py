"""Device placement on a GPU: solver, gradients, CNF and a CLI training run agree with the CPU.

Skipped without CUDA (the CI machine has none); run on a GPU machine with `pytest tests/test_cuda.py`.
"""

import json

import pytest
import torch
from torch import nn

import odeflow
from odeflow.cli.main import main
from odeflow.flows import CNF
from odeflow.nn import ODENet

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def field(device):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 32), nn.Tanh(), nn.Linear(32, 3)).double().to(device)


@pytest.mark.parametrize("case", ["rk4", "dopri5", "adjoint", "checkpointed"])
def test_solve_and_gradients_match_the_cpu(case):
    kw = dict(
        rk4=dict(method="rk4", step=odeflow.FixedStep(0.05)),
        dopri5=dict(method="dopri5", step=odeflow.Adaptive(1e-8, 1e-10)),
        adjoint=dict(method="dopri5", step=odeflow.Adaptive(1e-8, 1e-10), gradient=odeflow.OptimizeDiscretize()),
        checkpointed=dict(
            method="rk4", step=odeflow.FixedStep(0.05), gradient=odeflow.DiscretizeOptimize(checkpoints=3)
        ),
    )[case]
    out = {}
    for device in ("cpu", "cuda"):
        f = field(device)
        y0 = torch.linspace(-1, 1, 12, dtype=torch.float64).reshape(4, 3).to(device).requires_grad_(True)
        sol = odeflow.solve(_Wrap(f), y0, torch.tensor([0.0, 0.5, 1.0]), **kw)
        loss = sol.ys.pow(2).sum()
        grads = torch.autograd.grad(loss, [y0, *f.parameters()])
        out[device] = [loss.detach().cpu()] + [g.cpu() for g in grads]
        assert sol.ys.device.type == device
    for a, b in zip(out["cpu"], out["cuda"]):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-11)


class _Wrap(nn.Module):
    def __init__(self, f):
        super().__init__()
        self.f = f

    def forward(self, t, y):
        return self.f(y)


def test_cnf_loss_and_gradients_match_the_cpu():
    out = {}
    x = torch.randn(32, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for device in ("cpu", "cuda"):
        torch.manual_seed(0)
        flow = (
            CNF(
                ODENet(2, (32, 32)),
                2,
                T=0.5,
                train_T=True,
                method="rk4",
                step=odeflow.FixedStep(0.125),
                kinetic=0.01,
                jacobian=0.01,
            )
            .double()
            .to(device)
        )
        loss, _ = flow.loss(x.to(device))
        grads = torch.autograd.grad(loss, list(flow.parameters()))
        out[device] = [loss.detach().cpu()] + [g.cpu() for g in grads]
    for a, b in zip(out["cpu"], out["cuda"]):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-11)


TINY_IMAGE = [
    "--data",
    "digits",
    "--hidden",
    "4",
    "4",
    "4",
    "--batch",
    "8",
    "--val-size",
    "16",
    "--samples",
    "4",
    "--val-method",
    "rk4",
    "--val-step-size",
    "0.5",
    "--step-size",
    "0.5",
    "--iterations",
    "2",
    "--val-every",
    "2",
]
TINY_LATENT = [
    "--n-train",
    "12",
    "--n-test",
    "3",
    "--n-points",
    "20",
    "--val-size",
    "3",
    "--batch",
    "4",
    "--hidden",
    "5",
    "--latent-dim",
    "2",
    "--field-hidden",
    "6",
    "--step-size",
    "0.25",
    "--eval-samples",
    "2",
    "--samples",
    "2",
    "--iterations",
    "2",
]
RUNS = {
    "timeseries": ["--iterations", "3"],
    "cnf": ["--data", "8gaussians", "--iterations", "4", "--batch", "64", "--val-every", "2"],
    "tabular": ["--data", "breast_cancer", "--iterations", "2", "--val-every", "1"],
    "classify": [
        "--model",
        "odenet",
        "--data",
        "annuli",
        "--iterations",
        "3",
        "--batch",
        "32",
        "--hidden",
        "8",
        "--val-every",
        "3",
    ],
    "hamiltonian": ["--iterations", "3"],
    "function-encoder": ["--iterations", "3"],
    "sde": [
        "--iterations",
        "2",
        "--batch",
        "16",
        "--n-paths",
        "32",
        "--points",
        "6",
        "--hidden",
        "8",
        "--val-every",
        "2",
        "--dt",
        "0.1",
    ],
    "image": TINY_IMAGE,
    "latent": ["--model", "latent-ode", "--data", "periodic"] + TINY_LATENT,
}
EVALUATES = {"cnf", "tabular", "classify", "image"}


@pytest.mark.parametrize("task", sorted(RUNS))
def test_every_task_trains_on_cuda_and_its_checkpoint_evaluates(task, tmp_path):
    """Every `odeflow train` task runs end to end on the GPU (figures included) and writes a
    checkpoint that `odeflow evaluate` reads back."""
    if task == "sde":
        pytest.importorskip("torchsde")
    out = tmp_path / "run"
    assert main(["train", task, *RUNS[task], "--device", "cuda", "--quiet", "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["device"] == "cuda"
    assert (out / "last.pt").is_file() and (out / "summary.json").is_file()
    if task in EVALUATES:
        assert main(["evaluate", str(out / "last.pt")]) == 0


def test_compiled_adjoint_training_step_makes_no_host_sync_per_step():
    """compile=True with dopri5 and the adjoint: the forward and the backward solve are each one
    compiled while_loop, so a training step runs under sync debug mode "error" once compiled
    (statistics and failures are read after each solve, outside that mode's reach here)."""
    f = _Wrap(field("cuda"))
    y0 = torch.linspace(-1, 1, 12, dtype=torch.float64).reshape(4, 3).cuda()
    t = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    kw = dict(method="dopri5", step=odeflow.Adaptive(1e-7, 1e-9), gradient=odeflow.OptimizeDiscretize(), compile=True)
    odeflow.solve(f, y0, t, **kw).ys.pow(2).sum().backward()  # compiles
    import odeflow.solvers.compiled as compiled  # tensor_loop looks run_compiled up here at each call

    calls = []

    original = compiled.run_compiled

    def strict(*args):
        torch.cuda.set_sync_debug_mode("error")
        try:
            out = original(*args)
            calls.append(1)
            return out
        finally:
            torch.cuda.set_sync_debug_mode("default")

    compiled.run_compiled = strict
    try:
        odeflow.solve(f, y0, t, **kw).ys.pow(2).sum().backward()
    finally:
        compiled.run_compiled = original
    assert len(calls) == 2  # forward and backward solve, each one compiled call without a sync
