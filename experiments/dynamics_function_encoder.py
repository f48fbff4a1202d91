"""Function encoder (seed 002 eq. 35) on the Van der Pol family: zero-shot error on held-out μ.

Family: x' = y, y' = μ(1 − x²)y − x. Training: 24 systems, μ uniform in [0.5, 2.5] (seed 0),
20 trajectories each from initial states uniform in [−2, 2]², on [0, 3] sampled every 0.05.
Held out: μ in {0.75, 1.25, 1.75, 2.25} (inside the range) and 3.0 (outside); each gets 5
demonstration trajectories (the only data a method sees from it) and 10 evaluation trajectories.

Models (widths 2 hidden layers, tanh; finite-difference velocities at step midpoints):
  fe-ls / fe-inner  K = 8 basis fields (32-32 each) trained jointly: per system, α by least squares from
                    half its trajectories, loss = velocity error on the other half + ‖G − I‖²/K²
                    (pushes the basis to orthonormal, which is what eq. 35 assumes); 64 random points per
                    system and half each iteration. At test time α from the
                    5 demonstrations by least squares (fe-ls) or by eq. 35 inner products (fe-inner); no
                    gradient step.
  family-node       one neural ODE (64-64) on all training systems' velocities (cannot adapt), batches of 512
  fitted-node       one neural ODE (64-64) trained on the new system's 5 demonstrations (gradient steps)
Error: mean squared error of rollouts (dopri5 rtol 1e-6) over [0, 3] against the truth, averaged over the
10 evaluation trajectories of each held-out system. Adam 1e-2 -> 1e-4 cosine, full batch.

Usage: OMP_NUM_THREADS=1 PYTHONPATH=src python experiments/dynamics_function_encoder.py [--iterations N]
"""

import argparse
import json
import math
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from odeflow import Adaptive, solve
from odeflow.data import family_trajectories, parameter_grid, sample_parameters
from odeflow.models import FunctionEncoderODE, VectorFieldMLP, finite_difference_velocities

TEST_MU = [0.75, 1.25, 1.75, 2.25, 3.0]
POINTS = 64  # velocity points per system and half per iteration (random minibatch)


def cosine(opt, it, iterations, lr=1e-2):
    for g in opt.param_groups:
        g["lr"] = 1e-4 + 0.5 * (lr - 1e-4) * (1 + math.cos(math.pi * it / iterations))


def velocities(t, z):
    """z [T, m, n, 2] -> midpoints, velocities [m, n*(T-1), 2]."""
    mid, v = finite_difference_velocities(t, z)
    m = z.shape[1]
    return mid.permute(1, 2, 0, 3).reshape(m, -1, 2), v.permute(1, 2, 0, 3).reshape(m, -1, 2)


def train_fe(t, z, k, iterations, gram_weight=1.0, points=POINTS):
    torch.manual_seed(0)
    enc = FunctionEncoderODE(2, n_basis=k, hidden=(32, 32)).double()
    half = z.shape[2] // 2
    zd_all, vd_all = velocities(t, z[:, :, :half])
    zq_all, vq_all = velocities(t, z[:, :, half:])
    opt = torch.optim.Adam(enc.parameters(), lr=1e-2)
    eye = torch.eye(k, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    for it in tqdm(range(iterations), desc="dynamics_function_encoder", leave=False, mininterval=1.0):
        cosine(opt, it, iterations)
        i = torch.randint(zd_all.shape[1], (points,), generator=gen)
        j = torch.randint(zq_all.shape[1], (points,), generator=gen)
        zd, vd, zq, vq = zd_all[:, i], vd_all[:, i], zq_all[:, j], vq_all[:, j]
        gram, b = enc.inner_products(zd, vd)
        alpha = torch.linalg.solve(gram + 1e-6 * eye, b.unsqueeze(-1)).squeeze(-1)
        pred = torch.einsum("kmpd,mk->mpd", enc.basis_fields(zq), alpha)
        loss = (pred - vq).pow(2).mean() + gram_weight * (gram - eye).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return enc, float(loss.detach())


def train_node(zmid, v, iterations, batch=512):
    torch.manual_seed(0)
    f = VectorFieldMLP(2, (64, 64), "tanh", transform="identity", dtype=torch.float64)
    opt = torch.optim.Adam(f.parameters(), lr=1e-2)
    t0 = torch.zeros((), dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    for it in tqdm(range(iterations), desc="dynamics_function_encoder", leave=False, mininterval=1.0):
        cosine(opt, it, iterations)
        i = torch.randint(zmid.shape[0], (min(batch, zmid.shape[0]),), generator=gen)
        loss = (f(t0, zmid[i]) - v[i]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return f


def rollout_mse(field, z_true, t):
    with torch.no_grad():
        zs = solve(field, z_true[0], t, method="dopri5", step=Adaptive(rtol=1e-6, atol=1e-8)).ys
    return float((zs - z_true).pow(2).mean()), zs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=600)
    ap.add_argument("--basis", type=int, default=8)
    ap.add_argument("--gram-weight", type=float, default=1.0)
    ap.add_argument("--tag", default="", help="suffix of the result files")
    ap.add_argument("--fe-only", action="store_true", help="skip the two neural-ODE baselines")
    ap.add_argument("--out", type=Path, default=Path("docs/dynamics"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t = torch.linspace(0, 3, 61, dtype=torch.float64)
    params = sample_parameters("van-der-pol", 24, seed=0)
    z = family_trajectories("van-der-pol", params, 20, t, seed=0, dtype=torch.float64)  # [T, 24, 20, 2]
    t0 = time.time()
    enc, fe_loss = train_fe(t, z, args.basis, args.iterations, gram_weight=args.gram_weight)
    fe_s = time.time() - t0
    zm, v = velocities(t, z)
    t0 = time.time()
    family = None if args.fe_only else train_node(zm.reshape(-1, 2), v.reshape(-1, 2), args.iterations)
    family_s = time.time() - t0
    with torch.no_grad():
        gram, _ = enc.inner_products(zm, v)
    gram_error = float((gram - torch.eye(args.basis, dtype=gram.dtype)).abs().max())
    test = parameter_grid("van-der-pol", [[m] for m in TEST_MU])
    zt = family_trajectories("van-der-pol", test, 15, t, seed=7, dtype=torch.float64)  # 5 demos + 10 eval
    rows, alphas, examples = [], {}, {}
    for j, mu in enumerate(TEST_MU):
        demo, ev = zt[:, j : j + 1, :5], zt[:, j, 5:]
        zd, vd = velocities(t, demo)
        row = dict(mu=mu, inside_range=0.5 <= mu <= 2.5)
        with torch.no_grad():
            for method in ("least_squares", "inner"):
                alpha = enc.coefficients(zd, vd, method=method)[0]
                alphas.setdefault(method, {})[mu] = alpha.tolist()
                row[f"fe_{method}"], zs = rollout_mse(enc.field(alpha), ev, t)
                if method == "least_squares":
                    examples[mu] = dict(fe=zs[:, :3].tolist())
            if family is not None:
                row["family_node"], zs = rollout_mse(family, ev, t)
                examples[mu]["family"] = zs[:, :3].tolist()
        if args.fe_only:
            rows.append(row)
            print(json.dumps(row), flush=True)
            continue
        t1 = time.time()
        fitted = train_node(zd[0], vd[0], args.iterations)
        row["fitted_node_s"] = round(time.time() - t1, 1)
        with torch.no_grad():
            row["fitted_node"], zs = rollout_mse(fitted, ev, t)
        examples[mu]["fitted"] = zs[:, :3].tolist()
        examples[mu]["truth"] = ev[:, :3].tolist()
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = dict(
        gram_weight=args.gram_weight,
        max_abs_gram_minus_identity=gram_error,
        fe_train_loss=fe_loss,
        fe_train_s=round(fe_s, 1),
        family_train_s=round(family_s, 1),
        iterations=args.iterations,
        basis=args.basis,
        rows=rows,
        alphas=alphas,
    )
    (args.out / f"function_encoder_results{args.tag}.json").write_text(json.dumps(summary, indent=1))
    if not args.fe_only:
        plot(args.out, alphas, examples)


def plot(out, alphas, examples):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    mus = list(alphas["least_squares"])
    k = len(alphas["least_squares"][mus[0]])
    width = 0.8 / len(mus)
    for i, mu in enumerate(mus):
        ax.bar([j + i * width for j in range(k)], alphas["least_squares"][mu], width, label=f"mu={mu}")
    ax.set_xlabel("basis i")
    ax.set_ylabel("alpha_i (least squares)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "fe_alphas.png", dpi=110)
    plt.close(fig)
    fig, axes = plt.subplots(1, len(examples), figsize=(3.2 * len(examples), 3.2))
    for ax, (mu, ex) in zip(axes, examples.items()):
        for key, style in (("truth", "k-"), ("fe", "C0--"), ("family", "C1:"), ("fitted", "C2-.")):
            zs = torch.tensor(ex[key])
            for n in range(zs.shape[1]):
                ax.plot(zs[:, n, 0], zs[:, n, 1], style, lw=1, label=key if n == 0 else None)
        ax.set_title(f"mu = {mu}")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "fe_phase_portraits.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
