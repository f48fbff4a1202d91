"""Image CNFs on scikit-learn's 8x8 digits: the FFJORD recipe vs RNODE vs RNODE + TO-FLOW + Disc-Opt.

Each recipe trains the multiscale CNF (`odeflow.flows.MultiscaleCNF`, 2 scales, 3x3 conv nets,
softplus, t as a channel) for a budget of training seconds (validation not counted) and
records the validation bits/dim against training wall time; at the end the test bits/dim
(dopri5 1e-5) and a grid of samples. Run one recipe per process (they ran side by side):

    PYTHONPATH=src OMP_NUM_THREADS=1 python experiments/images_digits.py --recipe rnode --budget 360
    python experiments/images_digits.py --plot          # curves.png, samples.png, table.md

Recipes (seed 001 §6, seed 004 Algorithm 1):
  ffjord       Opt-Disc: dopri5 rtol = atol = 1e-5 with the continuous adjoint, PyTorch-default
               init, weights constant in time, no regularization.
  rnode        Disc-Opt: rk4 h = 0.25 on [0, 1], lambda_K = lambda_J = 0.01, f = 0 at the start,
               weights piecewise constant on 4 pieces.
  rnode-toflow rnode with rk4 4 steps on [0, T], every block's T learnable (Adam 1e-2,
               alpha = 0.1, clip [0.1, 1.9]).
Logit alpha 0.05 (Real NVP's; FFJORD's MNIST runs used 1e-6). Validation: 144 val images, Gaussian Hutchinson, dopri5 1e-5, fixed dequantization noise.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import signal
import time
from pathlib import Path

import torch

from odeflow.data.images import load_images
from odeflow.flows.image_transforms import dequantize
from odeflow.flows.multiscale import ImageEndTimes, MultiscaleCNF
from odeflow.solvers.stepping import Adaptive, FixedStep

RECIPES = {
    "ffjord": dict(method="dopri5", step=Adaptive(1e-5, 1e-5), adjoint=True, zero_init=False, pieces=1),
    "rnode": dict(method="rk4", step=FixedStep(0.25), kinetic=0.01, jacobian=0.01, pieces=4),
    "rnode-toflow": dict(method="rk4", step=FixedStep(steps=4), kinetic=0.01, jacobian=0.01, pieces=4, train_T=True),
}
EVAL = ("dopri5", Adaptive(1e-5, 1e-5))


def evaluate(flow: MultiscaleCNF, x: torch.Tensor, batch: int = 512) -> float:
    saved = [(b.method, b.step) for b in flow.cnfs]
    flow.set_solver(*EVAL)
    total = 0.0
    try:
        for i in range(0, len(x), batch):
            with torch.no_grad():
                total += float(flow.bits_per_dim(x[i : i + batch]).sum())
    finally:
        for b, (m, s) in zip(flow.cnfs, saved):
            b.set_solver(m, s)
    return total / len(x)


def train(
    recipe: str,
    budget: float,
    out: Path,
    hidden: int,
    batch: int,
    seed: int,
    points: int,
    alpha: float,
    stop_at: float | None = None,
) -> None:
    torch.manual_seed(seed)
    flow = MultiscaleCNF((1, 8, 8), hidden=(hidden,) * 3, alpha=alpha, **RECIPES[recipe])
    opt = torch.optim.Adam(flow.theta(), lr=1e-3)
    ends = ImageEndTimes(flow, lr=1e-2, alpha=0.1, eps=0.1) if recipe == "rnode-toflow" else None
    x_train, _ = load_images("digits", None, "train")
    g = torch.Generator().manual_seed(1)
    x_val = dequantize(load_images("digits", None, "val")[0], g)
    x_test = dequantize(load_images("digits", None, "test")[0], g)
    out.mkdir(parents=True, exist_ok=True)
    rows, elapsed, cpu, it, next_val = [], 0.0, 0.0, 0, 0.0
    run_start, run_cpu_start = time.perf_counter(), time.process_time()
    gen = torch.Generator().manual_seed(seed)
    # SIGTERM/SIGINT end training early but still write the test bits/dim, samples and summary
    signal.signal(signal.SIGTERM, _stop)
    stopped = False
    fh = (out / f"{recipe}.csv").open("w", newline="")
    writer = None
    try:
        while elapsed < budget:
            if stop_at is not None and time.time() >= stop_at:  # a wall-clock deadline (epoch seconds)
                stopped = True
                print(f"{recipe}: deadline reached after {it} iterations, {elapsed:.0f} s of training", flush=True)
                break
            idx = torch.randint(0, len(x_train), (batch,), generator=gen)
            xb = dequantize(x_train[idx], gen)
            start, start_cpu = time.perf_counter(), time.process_time()
            opt.zero_grad(set_to_none=True)
            loss, parts = flow.loss(xb)
            loss.backward()
            opt.step()
            if ends is not None:
                ends.step()
            elapsed += time.perf_counter() - start
            cpu += time.process_time() - start_cpu
            nfe_f, nfe_b = flow.nfe
            row = dict(
                iteration=it,
                wall_time=elapsed,
                cpu_time=cpu,
                loss=float(loss.detach()),
                train_bpd=float(parts["bits_per_dim"]),
                nfe_forward=nfe_f,
                nfe_backward=nfe_b,
                T=ends.mean() if ends else 1.0,
                val_bpd="",
            )
            if elapsed >= next_val or elapsed >= budget:
                row["val_bpd"] = evaluate(flow, x_val)
                next_val += budget / points
                print(
                    f"{recipe} it {it} t {elapsed:.0f}s train {row['train_bpd']:.3f} val {row['val_bpd']:.3f} "
                    f"nfe {nfe_f}/{nfe_b} T {row['T']:.3f}",
                    flush=True,
                )
            rows.append(row)
            if writer is None:
                writer = csv.DictWriter(fh, fieldnames=list(row))
                writer.writeheader()
            writer.writerow(row)
            fh.flush()
            it += 1
    except KeyboardInterrupt:
        stopped = True
        print(f"{recipe}: stopped after {it} iterations, {elapsed:.0f} s of training", flush=True)
    finally:
        fh.close()
    if not rows:
        return
    if rows[-1]["val_bpd"] == "":
        rows[-1] = dict(rows[-1], val_bpd=evaluate(flow, x_val))
    test = evaluate(flow, x_test)
    flow.set_solver(*EVAL)
    with torch.no_grad():
        samples = flow.sample(64, generator=torch.Generator().manual_seed(0)).clamp(0, 1)
    torch.save(samples, out / f"{recipe}_samples.pt")
    from odeflow.plotting_images import save_image_grid

    save_image_grid(samples, out / f"{recipe}_samples.png", nrow=8)
    summary = dict(
        recipe=recipe,
        iterations=it,
        train_seconds=elapsed,
        train_cpu_seconds=cpu,
        s_per_iter=elapsed / it,
        cpu_s_per_iter=cpu / it,
        total_wall_seconds=time.perf_counter() - run_start,
        total_cpu_seconds=time.process_time() - run_cpu_start,
        test_bits_per_dim=test,
        final_val_bits_per_dim=rows[-1]["val_bpd"],
        T=ends.values() if ends else None,
        nfe_forward_last=rows[-1]["nfe_forward"],
        nfe_backward_last=rows[-1]["nfe_backward"],
        stopped_early=stopped,
        hidden=hidden,
        batch=batch,
        alpha=alpha,
        params=sum(p.numel() for p in flow.parameters()),
    )
    (out / f"{recipe}_summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary), flush=True)


def _stop(signum, frame) -> None:
    raise KeyboardInterrupt


def plot(out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from odeflow.plotting_images import image_grid

    fig, (ax, ax_cpu, ax_it) = plt.subplots(1, 3, figsize=(15, 4))
    lines = [
        "| recipe | iterations | training wall s | s/iter (wall) | CPU s/iter | NFE-F / NFE-B mean (last iter) "
        "| final val bits/dim | test bits/dim | T |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for recipe in RECIPES:
        path = out / f"{recipe}.csv"
        mean_nfe = ""
        if path.exists():
            all_rows = list(csv.DictReader(path.open()))
            rows = [r for r in all_rows if r["val_bpd"]]
            mean_nfe = (
                f"{sum(float(r['nfe_forward']) for r in all_rows) / len(all_rows):.0f} / "
                f"{sum(float(r['nfe_backward']) for r in all_rows) / len(all_rows):.0f} "
            )
        elif (out / f"{recipe}.log").exists():  # a run stopped before its end: the validations it printed
            rows = [
                dict(iteration=m[0], wall_time=m[1], val_bpd=m[2])
                for m in re.findall(r"it (\d+) t (\d+)s train \S+ val (\S+)", (out / f"{recipe}.log").read_text())
            ]
        else:
            continue
        bpd = [float(r["val_bpd"]) for r in rows]
        ax.plot([float(r["wall_time"]) for r in rows], bpd, marker="o", label=recipe)
        if rows and "cpu_time" in rows[0]:
            ax_cpu.plot([float(r["cpu_time"]) for r in rows], bpd, marker="o", label=recipe)
        ax_it.plot([int(r["iteration"]) + 1 for r in rows], bpd, marker="o", label=recipe)
        if not (out / f"{recipe}_summary.json").exists():
            continue
        s = json.loads((out / f"{recipe}_summary.json").read_text())
        T = "1.0" if s["T"] is None else ", ".join(f"{t:.2f}" for t in s["T"])
        cpu = f"{s['cpu_s_per_iter']:.2f}" if "cpu_s_per_iter" in s else "–"
        lines.append(
            f"| {recipe} | {s['iterations']} | {s['train_seconds']:.0f} | {s['s_per_iter']:.2f} | {cpu} | "
            f"{mean_nfe}({s['nfe_forward_last']} / {s['nfe_backward_last']}) | {float(s['final_val_bits_per_dim']):.3f} | "
            f"{s['test_bits_per_dim']:.3f} | {T} |"
        )
    ax.set_xlabel("training wall time (s)")
    ax.set_ylabel("validation bits/dim (dopri5 1e-5)")
    ax.set_title("8x8 digits: multiscale CNF")
    ax.legend()
    ax_cpu.set_xlabel("training CPU time of the process (s)")
    ax_cpu.set_ylabel("validation bits/dim (dopri5 1e-5)")
    ax_cpu.legend()
    ax_it.set_xlabel("iteration")
    ax_it.set_ylabel("validation bits/dim (dopri5 1e-5)")
    ax_it.legend()
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=120)
    panels = [("data", load_images("digits", None, "test")[0][:64])]
    panels += [
        (r, torch.load(out / f"{r}_samples.pt", weights_only=True))
        for r in RECIPES
        if (out / f"{r}_samples.pt").exists()
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3.2), squeeze=False)
    axes = axes[0]
    for a, (name, imgs) in zip(axes, panels):
        a.imshow(image_grid(imgs, nrow=8), cmap="gray", vmin=0, vmax=255)
        a.set_title(name)
        a.axis("off")
    fig.tight_layout()
    fig.savefig(out / "samples.png", dpi=120)
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", choices=sorted(RECIPES))
    p.add_argument("--budget", type=float, default=360.0, help="training seconds per recipe")
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--points", type=int, default=12, help="validations per run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--alpha", type=float, default=0.05, help="logit transform alpha")
    p.add_argument("--out", type=Path, default=Path("docs/images_digits"))
    p.add_argument(
        "--stop-at",
        type=float,
        default=None,
        help="wall-clock deadline (Unix seconds): stop training then, still evaluate and write results",
    )
    p.add_argument("--plot", action="store_true")
    args = p.parse_args()
    if args.plot:
        plot(args.out)
    elif args.recipe:
        train(
            args.recipe,
            args.budget,
            args.out,
            args.hidden,
            args.batch,
            args.seed,
            args.points,
            args.alpha,
            args.stop_at,
        )
    else:
        p.error("give --recipe or --plot")


if __name__ == "__main__":
    main()
