"""Hamiltonian NN vs plain neural ODE: energy drift over 100x the training horizon (issue 16).

Data: pendulum (H = p²/2 + 1 − cos q) and mass-spring (H = (q² + p²)/2), 25 training
trajectories on [0, 3] sampled every 0.05, energies in [0.1, 1.2], observation noise 0.
Objective for every model (Greydanus et al. 2019): squared error of the field against
finite-difference velocities at step midpoints; Adam 1e-2 -> 1e-4 cosine, full batch.

Models (same width, 2 hidden layers of 64, tanh):
  node       plain neural ODE f_θ(z) (odeflow VectorFieldMLP, identity input)
  hnn        H_θ(q, p), field (∂H/∂p, −∂H/∂q) by autograd
  hnn-sep    H_θ = T_θ(p) + V_θ(q), rolled out with leapfrog
Rollouts from 20 new initial states to t = 300 (100x the horizon): node and hnn with rk4 h = 0.1,
hnn-sep with leapfrog h = 0.1, plus node/hnn with dopri5 rtol 1e-7. Reported: mean |H(z(t)) − H(z0)|
of the TRUE energy at t = 3 and t = 300, the max over [0, 300], and state error at t = 3.

Usage: OMP_NUM_THREADS=1 PYTHONPATH=src python experiments/dynamics_hnn.py [--iterations N] [--out docs/dynamics]
"""

import argparse
import json
import math
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from odeflow import Adaptive, FixedStep
from odeflow.data import hamiltonian_trajectories
from odeflow.data.hamiltonian_systems import get_hamiltonian_system
from odeflow.models import HamiltonianNN, SeparableHamiltonianNN, VectorFieldMLP, finite_difference_velocities
from odeflow.solve import solve


def build(kind):
    if kind == "node":
        return VectorFieldMLP(2, (64, 64), "tanh", transform="identity", dtype=torch.float64)
    if kind == "hnn":
        return HamiltonianNN(1, (64, 64)).double()
    return SeparableHamiltonianNN(1, (64, 64)).double()


def train(model, zmid, v, iterations, lr=1e-2):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    t0 = torch.zeros((), dtype=torch.float64)
    for it in tqdm(range(iterations), desc="dynamics_hnn", leave=False, mininterval=1.0):
        for g in opt.param_groups:
            g["lr"] = 1e-4 + 0.5 * (lr - 1e-4) * (1 + math.cos(math.pi * it / iterations))
        loss = (model(t0, zmid) - v).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss.detach())


def rollout(kind, model, z0, t, integrator):
    with torch.no_grad():
        if integrator == "leapfrog":
            return model.rollout(z0, t, method="leapfrog", step=FixedStep(0.1))
        step = FixedStep(0.1) if integrator == "rk4" else Adaptive(rtol=1e-7, atol=1e-9)
        return solve(model, z0, t, method=integrator, step=step).ys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=1500)
    ap.add_argument("--systems", nargs="+", default=["pendulum", "mass-spring"])
    ap.add_argument("--out", type=Path, default=Path("docs/dynamics"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    horizon, factor = 3.0, 100
    results = []
    curves = {}
    for system in args.systems:
        energy = get_hamiltonian_system(system).energy
        t_train = torch.linspace(0, horizon, 61, dtype=torch.float64)
        z, _ = hamiltonian_trajectories(system, 25, t_train, seed=0, dtype=torch.float64)
        zmid, v = finite_difference_velocities(t_train, z)
        zmid, v = zmid.reshape(-1, 2), v.reshape(-1, 2)
        t_long = torch.linspace(0, horizon * factor, 1001, dtype=torch.float64)
        _, ref = hamiltonian_trajectories(system, 20, t_long, seed=123, dtype=torch.float64)
        z0 = ref[0]
        e0 = energy(z0)
        i_h = int((t_long <= horizon + 1e-9).sum()) - 1
        for kind in ("node", "hnn", "hnn-sep"):
            torch.manual_seed(0)
            model = build(kind)
            t0 = time.time()
            loss = train(model, zmid, v, args.iterations)
            train_s = time.time() - t0
            for integrator in ["leapfrog"] if kind == "hnn-sep" else ["rk4", "dopri5"]:
                t0 = time.time()
                zs = rollout(kind, model, z0, t_long, integrator)
                drift = (energy(zs) - e0).abs()  # [T, n]
                row = dict(
                    system=system,
                    model=kind,
                    integrator=integrator,
                    train_loss=loss,
                    train_s=round(train_s, 1),
                    rollout_s=round(time.time() - t0, 1),
                    state_err_T=float((zs[i_h] - ref[i_h]).norm(dim=-1).mean()),
                    drift_T=float(drift[i_h].mean()),
                    drift_100T=float(drift[-1].mean()),
                    drift_max=float(drift.max()),
                )
                results.append(row)
                curves[f"{system}/{kind}/{integrator}"] = drift.mean(dim=1).tolist()
                print(json.dumps(row), flush=True)
    (args.out / "hnn_results.json").write_text(json.dumps(dict(results=results), indent=1))
    plot(args.out, t_long, curves)


def plot(out, t, curves):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = sorted({k.split("/")[0] for k in curves})
    fig, axes = plt.subplots(1, len(systems), figsize=(5 * len(systems), 3.6), squeeze=False)
    for ax, system in zip(axes[0], systems):
        for key, c in curves.items():
            if key.startswith(system + "/"):
                ax.semilogy(t, torch.tensor(c).clamp_min(1e-8), label=key.split("/", 1)[1])
        ax.axvline(3.0, color="k", lw=0.5, ls=":")
        ax.set_title(f"{system}: |H(z(t)) - H(z0)| (true H), mean of 20")
        ax.set_xlabel("t (training horizon 3)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "hnn_energy_drift.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
