"""GPU training throughput, odeflow vs torchdiffeq on the same card (issue 18, item 5).

1. MLP field 2 -> 64 -> 64 -> 2 (tanh), batch 1024, one training step (solve, MSE, backward,
   Adam): rk4 10 steps (Disc-Opt), dopri5 1e-5 backprop, dopri5 1e-5 adjoint; odeflow eager,
   and for the fixed grid the whole step captured in a CUDA graph (`GraphedStep`).
2. CNF on 8gaussians, FFJORD's toy net (64-64-64 concatsquash, tanh), batch 1024:
   the FFJORD recipe (dopri5 1e-5 adjoint, Hutchinson) in torchdiffeq and in odeflow, and
   odeflow's RNODE recipe (rk4 4 steps, exact trace, lambda_K = lambda_J = 0.01) eager and
   CUDA-graphed; the same rk4 4-step exact-trace step in torchdiffeq for the like-for-like ratio.
3. The MNIST multiscale CNF (configs/mnist_rnode.toml, batch 200, synthetic 28x28 bytes: the
   cost of a fixed-grid iteration does not depend on pixel values) it/s.
Timings: median of interleaved repeats with torch.cuda.synchronize. Prints markdown. Asserts nothing.

    PYTHONPATH=src python benchmarks/gpu.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Dict

import tomllib
import torch
from torch import nn

import odeflow
from odeflow.data.toy2d import sample_toy
from odeflow.flows import CNF
from odeflow.nn import ODENet
from odeflow.training.cuda_graph import GraphedStep

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import time_side_by_side  # noqa: E402

DEV = "cuda"


def timed(fns: Dict[str, Callable[[], object]], repeats: int, min_time: float = 0.3) -> Dict[str, float]:
    """Median seconds per call, round-robin, each call followed by a device sync."""
    return time_side_by_side(fns, repeats, min_time, sync=torch.cuda.synchronize if DEV == "cuda" else lambda: None)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 2))
        self.nfe = 0

    def forward(self, t, y):
        return self.net(y)


def mlp_steps(repeats: int) -> list:
    import torchdiffeq

    g = torch.Generator().manual_seed(0)
    y0 = torch.randn(1024, 2, generator=g).to(DEV)
    target = torch.randn(1024, 2, generator=g).to(DEV)
    t_host = torch.tensor([0.0, 1.0])
    t_dev = t_host.to(DEV)
    rows = []
    cases = {
        "rk4 10 steps (Disc-Opt)": (
            dict(method="rk4", step=odeflow.FixedStep(0.1)),
            lambda f: torchdiffeq.odeint(f, y0, t_dev, method="rk4", options=dict(step_size=0.1)),
        ),
        "dopri5 1e-5 backprop": (
            dict(method="dopri5", step=odeflow.Adaptive(1e-5, 1e-5)),
            lambda f: torchdiffeq.odeint(f, y0, t_dev, rtol=1e-5, atol=1e-5),
        ),
        "dopri5 1e-5 adjoint": (
            dict(method="dopri5", step=odeflow.Adaptive(1e-5, 1e-5), gradient=odeflow.OptimizeDiscretize()),
            lambda f: torchdiffeq.odeint_adjoint(f, y0, t_dev, rtol=1e-5, atol=1e-5),
        ),
    }
    for label, (kw, tdq) in cases.items():
        torch.manual_seed(0)
        f_ours, f_tdq = MLP().to(DEV), MLP().to(DEV)
        f_tdq.load_state_dict(f_ours.state_dict())
        opt_ours = torch.optim.Adam(f_ours.parameters(), 1e-4, capturable=DEV == "cuda")
        opt_tdq = torch.optim.Adam(f_tdq.parameters(), 1e-4)

        def ours_step(y, tgt, check=True):
            ys = odeflow.solve(f_ours, y, t_host, check_finite=check, **kw).ys
            loss = (ys[-1] - tgt).pow(2).mean()
            loss.backward()
            opt_ours.step()
            return loss

        def ours():
            opt_ours.zero_grad(set_to_none=True)
            ours_step(y0, target)

        def theirs():
            opt_tdq.zero_grad(set_to_none=True)
            (tdq(f_tdq)[-1] - target).pow(2).mean().backward()
            opt_tdq.step()

        fns = {"torchdiffeq": theirs, "odeflow": ours}
        if kw["method"] == "rk4" and DEV == "cuda":
            graphed = GraphedStep(lambda y, tgt: ours_step(y, tgt, check=False), [y0, target], opt_ours)
            fns["odeflow CUDA graph"] = lambda: graphed(y0, target)
        t = timed(fns, repeats)
        rows.append((label, t))
    return rows


def cnf_steps(repeats: int) -> list:
    import torchdiffeq

    x = sample_toy("8gaussians", 1024, seed=0).to(DEV)
    rows = []

    def make(**kw):
        torch.manual_seed(0)
        return CNF(ODENet(2, (64, 64, 64), layer="concatsquash", activation="tanh"), 2, T=0.5, **kw).to(DEV)

    # FFJORD recipe.
    ours = make(divergence="hutchinson", method="dopri5", step=odeflow.Adaptive(1e-5, 1e-5), adjoint=True)
    theirs_net = make().net
    theirs_net.load_state_dict(ours.net.state_dict())
    opt_o = torch.optim.Adam(ours.parameters(), 1e-3)
    opt_t = torch.optim.Adam(theirs_net.parameters(), 1e-3)
    tdq_func = TorchdiffeqCNF(theirs_net, "hutchinson")
    t_dev = torch.tensor([0.0, 0.5], device=DEV)

    def ours_ffjord():
        opt_o.zero_grad(set_to_none=True)
        ours.loss(x)[0].backward()
        opt_o.step()

    def theirs_ffjord():
        opt_t.zero_grad(set_to_none=True)
        tdq_func.e = torch.randn_like(x)
        zT, lT = [
            s[-1]
            for s in torchdiffeq.odeint_adjoint(
                tdq_func,
                (x, torch.zeros(len(x), device=DEV)),
                t_dev,
                rtol=1e-5,
                atol=1e-5,
                adjoint_params=tuple(theirs_net.parameters()),
            )
        ]
        nll = -(-0.5 * (2 * 1.8378770664093453 + (zT * zT).sum(1)) - lT).mean()
        nll.backward()
        opt_t.step()

    rows.append(
        (
            "FFJORD recipe (dopri5 1e-5 adjoint, Hutchinson)",
            timed({"torchdiffeq": theirs_ffjord, "odeflow": ours_ffjord}, repeats),
        )
    )

    # RNODE recipe: rk4 4 steps, exact trace, kinetic + Jacobian terms.
    rn = make(divergence="exact", method="rk4", step=odeflow.FixedStep(0.125), kinetic=0.01, jacobian=0.01)
    opt_r = torch.optim.Adam(rn.parameters(), 1e-3, capturable=DEV == "cuda")
    tdq_net = make().net
    tdq_net.load_state_dict(rn.net.state_dict())
    opt_tr = torch.optim.Adam(tdq_net.parameters(), 1e-3)
    tdq_exact = TorchdiffeqCNF(tdq_net, "exact")

    def rn_step(xb):
        loss = rn.loss(xb)[0]
        loss.backward()
        opt_r.step()
        return loss

    def ours_rnode():
        opt_r.zero_grad(set_to_none=True)
        rn_step(x)

    def theirs_rk4():
        opt_tr.zero_grad(set_to_none=True)
        zT, lT = [
            s[-1]
            for s in torchdiffeq.odeint(
                tdq_exact, (x, torch.zeros(len(x), device=DEV)), t_dev, method="rk4", options=dict(step_size=0.125)
            )
        ]
        (-(-0.5 * (2 * 1.8378770664093453 + (zT * zT).sum(1)) - lT).mean()).backward()
        opt_tr.step()

    fns = {"torchdiffeq (no RNODE terms)": theirs_rk4, "odeflow": ours_rnode}
    if DEV == "cuda":
        graphed = GraphedStep(rn_step, [x], opt_r)
        fns["odeflow CUDA graph"] = lambda: graphed(x)
    rows.append(("rk4 4 steps, exact trace (odeflow: + RNODE terms)", timed(fns, repeats)))
    return rows


class TorchdiffeqCNF(nn.Module):
    """FFJORD's augmented dynamics for torchdiffeq: (f, -div f), divergence by autograd."""

    def __init__(self, net: nn.Module, divergence: str) -> None:
        super().__init__()
        self.net, self.divergence, self.e = net, divergence, None

    def forward(self, t, state):
        z = state[0]
        with torch.enable_grad():
            z = z if z.requires_grad else z.requires_grad_(True)
            f = self.net(t, z)
            if self.divergence == "hutchinson":
                eJ = torch.autograd.grad(f, z, self.e, create_graph=True)[0]
                div = (eJ * self.e).sum(1)
            else:
                div = sum(torch.autograd.grad(f[:, i].sum(), z, create_graph=True)[0][:, i] for i in range(z.shape[1]))
        return f, -div


def mnist(repeats: int) -> list:
    from odeflow.flows.image_transforms import dequantize
    from odeflow.tasks.image import ImageConfig, build_image_flow

    rows = []
    for name in ("mnist_rnode", "mnist_toflow"):
        values = tomllib.loads((Path(__file__).parents[1] / "configs" / f"{name}.toml").read_text())
        if values.get("step_size") == 0:
            values["step_size"] = None
        cfg = ImageConfig(**values)
        torch.manual_seed(0)
        flow = build_image_flow(cfg).to(DEV)
        opt = torch.optim.Adam(flow.theta(), lr=cfg.lr)
        g = torch.Generator().manual_seed(0)
        x = torch.randint(0, 256, (cfg.batch, 1, 28, 28), dtype=torch.uint8, generator=g).to(DEV)
        gd = torch.Generator(device=DEV).manual_seed(0)
        if DEV == "cpu":
            x = x[:2]

        def step():
            opt.zero_grad(set_to_none=True)
            loss, _ = flow.loss(dequantize(x, gd))
            loss.backward()
            opt.step()

        t = timed({name: step}, repeats, min_time=1.0)
        rows.append((f"{name} (batch {cfg.batch}, {sum(p.numel() for p in flow.theta())} parameters)", t))
    return rows


def table(title: str, rows: list) -> None:
    print(f"\n### {title}\n")
    for label, t in rows:
        base = t.get("torchdiffeq") or next((v for k, v in t.items() if k.startswith("torchdiffeq")), None)
        cells = []
        for k, v in t.items():
            ratio = f", {base / v:.2f}x" if base and not k.startswith("torchdiffeq") else ""
            cells.append(f"{k}: {v * 1e3:.2f} ms ({1 / v:.1f} it/s{ratio})")
        print(f"- **{label}**: " + "; ".join(cells))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", nargs="*", default=["mlp", "cnf", "mnist"])
    ap.add_argument("--device", default="cuda", help="cpu: a smoke run of the same code (no CUDA graphs)")
    args = ap.parse_args()
    global DEV
    DEV = args.device
    if DEV == "cuda" and not torch.cuda.is_available():
        sys.exit("benchmarks/gpu.py needs a CUDA device (or --device cpu for a smoke run)")
    import torchdiffeq

    repeats = 3 if args.quick else 7
    card = torch.cuda.get_device_name() if DEV == "cuda" else "CPU smoke run"
    print(
        f"{card}, torch {torch.__version__}, torchdiffeq {torchdiffeq.__version__}, "
        f"float32; ratios = torchdiffeq time / odeflow time"
    )
    if "mlp" in args.only:
        table("MLP 2-64-64-2, batch 1024, training step", mlp_steps(repeats))
    if "cnf" in args.only:
        table("CNF 8gaussians, 64-64-64 concatsquash, batch 1024, training step", cnf_steps(repeats))
    if "mnist" in args.only:
        table("MNIST multiscale CNF, training iteration (synthetic batch)", mnist(max(3, repeats // 2)))


if __name__ == "__main__":
    main()
