"""Interpolation / extrapolation MSE of latent ODE (ODE-RNN encoder), ODE-RNN and RNN-Δt
(issue 14; Rubanova et al. 2019 Tables 1-2 in spirit, at laptop scale) and the per-iteration
time of both gradient modes.

Every run: Adam (lr 1e-2, decay 0.999 per step, gradient norm clipped at 10), batches of `--batch`
series, `--iterations` steps or `--budget` seconds of training steps (whichever ends first), one CPU thread,
the same seed for every model; test MSE on 100 held-out periodic series / the 16 CO2 test
windows, scored points only (held-out points for interpolation, t >= t_split for extrapolation).
Runs are engine-agnostic (a plain loop over tasks/latent_setup.py, the code the `odeflow train
latent` task uses), one JSON per run in --out.

Usage:
  python experiments/latent_table.py run --model latent-ode --data periodic --task extrapolation --fraction 0.3
  python experiments/latent_table.py grid [--iterations N]       # every row of docs/latent.md
  python experiments/latent_table.py timing                      # ms/iter of Disc-Opt vs Opt-Disc
  python experiments/latent_table.py table                       # markdown from the JSON files
"""

import argparse
import json
import os
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from odeflow.models.elbo import kl_weight
from odeflow.tasks.latent_setup import LatentSettings, build_model, evaluate, load_data, make_task_batch

OUT = Path("runs/latent_table")


def run(
    settings: LatentSettings, iterations: int, batch: int, lr: float, seed: int, out: Path, budget: float = 0.0
) -> dict:
    """Train for `iterations`, or until `budget` seconds of training steps (0: no budget)."""
    settings.check()
    torch.manual_seed(seed)
    data = load_data(settings, seed)
    model = build_model(settings, len(data.variables))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.999)
    g = torch.Generator().manual_seed(seed)
    from odeflow.tasks.latent_setup import training_loss

    times, losses = [], []
    for it in tqdm(range(iterations), desc="latent_table", leave=False, mininterval=1.0):
        idx = torch.randint(len(data.train), (batch,), generator=g).tolist()
        tb = make_task_batch([data.train[i] for i in idx], settings, data.t_split, g)
        t0 = time.perf_counter()
        loss, metrics = training_loss(model, tb, settings, kl_weight(it, settings.kl_warmup, settings.kl_rate))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)  # early ODE-RNN steps can spike
        opt.step()
        sched.step()
        times.append(time.perf_counter() - t0)
        losses.append(metrics["mse"])
        if budget and sum(times) >= budget:
            break
        if it % 50 == 0 or it == iterations - 1:
            print(
                f"{settings.model} {settings.data} {settings.task_kind} p={settings.fraction} it {it}: "
                f"train mse {metrics['mse']:.4f} {1e3 * times[-1]:.0f} ms",
                flush=True,
            )
    test = evaluate(model, data.test, settings, data.t_split, seed)
    result = dict(
        model=settings.model,
        data=settings.data,
        task=settings.task_kind,
        fraction=settings.fraction,
        mode=settings.mode,
        iterations=len(times),
        budget_s=budget,
        batch=batch,
        lr=lr,
        seed=seed,
        ms_per_iter=1e3 * sum(times[1:]) / max(1, len(times) - 1),
        train_mse_last50=sum(losses[-50:]) / len(losses[-50:]),
        **{f"test_{k}": v for k, v in test.items()},
    )
    out.mkdir(parents=True, exist_ok=True)
    name = f"{settings.model}_{settings.data}_{settings.task_kind}_{settings.fraction}_{settings.mode}_s{seed}.json"
    (out / name).write_text(json.dumps(result, indent=1))
    print(json.dumps(result), flush=True)
    return result


def timing(iterations: int, batch: int, seed: int, out: Path) -> dict:
    """ms per training iteration of Disc-Opt and Opt-Disc, alternating iteration by iteration
    in one process (same batches, same load), for the latent ODE and the ODE-RNN."""
    from odeflow.tasks.latent_setup import training_loss

    result = {}
    for model in ("latent-ode", "ode-rnn"):
        runs = {}
        for mode in ("disc-opt", "opt-disc"):
            s = LatentSettings(model=model, data="periodic", task_kind="interpolation", fraction=0.5, mode=mode)
            torch.manual_seed(seed)
            data = load_data(s, seed)
            net = build_model(s, 1)
            runs[mode] = (s, data, net, torch.optim.Adam(net.parameters(), lr=1e-2), [])
        g = torch.Generator().manual_seed(seed)
        for it in tqdm(range(iterations), desc="latent_table", leave=False, mininterval=1.0):
            idx = torch.randint(len(data.train), (batch,), generator=g).tolist()
            state = g.get_state()
            for _mode, (s, data, net, opt, times) in runs.items():
                g.set_state(state)  # both modes see the same batch and masks
                tb = make_task_batch([data.train[i] for i in idx], s, data.t_split, g)
                t0 = time.perf_counter()
                loss, _ = training_loss(net, tb, s, kl_weight(it, s.kl_warmup, s.kl_rate))
                opt.zero_grad()
                loss.backward()
                opt.step()
                times.append(time.perf_counter() - t0)
        for mode, (*_, times) in runs.items():
            result[f"{model}_{mode}_ms"] = 1e3 * sum(times[1:]) / max(1, len(times) - 1)
        result[f"{model}_ratio"] = result[f"{model}_opt-disc_ms"] / result[f"{model}_disc-opt_ms"]
        print(json.dumps(result), flush=True)
    result.update(iterations=iterations, batch=batch)
    out.mkdir(parents=True, exist_ok=True)
    (out / "timing.json").write_text(json.dumps(result, indent=1))
    return result


def grid_rows():
    for data, fractions in (("periodic", (0.1, 0.3, 0.5)), ("co2", (0.5,))):
        for fraction in fractions:
            for task in ("interpolation", "extrapolation"):
                for model in ("latent-ode", "ode-rnn", "rnn-dt"):
                    yield LatentSettings(model=model, data=data, task_kind=task, fraction=fraction)


def table(out: Path) -> str:
    rows = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    rows = [r for r in rows if r.get("mode") == "disc-opt" and r["iterations"] > 20]
    key = {}
    for r in rows:
        key[(r["data"], r["fraction"], r["task"], r["model"])] = r["test_mse"]
    lines = ["| data | observed | task | latent ODE | ODE-RNN | RNN-Δt |", "|---|---|---|---|---|---|"]
    for data, fr, task in sorted({k[:3] for k in key}):
        cells = [
            f"{key[(data, fr, task, m)]:.4f}" if (data, fr, task, m) in key else "–"
            for m in ("latent-ode", "ode-rnn", "rnn-dt")
        ]
        lines.append(f"| {data} | {int(100 * fr)}% | {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["run", "grid", "timing", "table"])
    p.add_argument("--model", default="latent-ode")
    p.add_argument("--data", default="periodic")
    p.add_argument("--task", default="interpolation")
    p.add_argument("--fraction", type=float, default=0.5)
    p.add_argument("--mode", default="disc-opt")
    p.add_argument("--iterations", type=int, default=250)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--budget", type=float, default=0.0, help="seconds of training per run (0: none)")
    a = p.parse_args()
    torch.set_num_threads(1)
    if a.what == "run":
        run(
            LatentSettings(model=a.model, data=a.data, task_kind=a.task, fraction=a.fraction, mode=a.mode),
            a.iterations,
            a.batch,
            a.lr,
            a.seed,
            a.out,
            a.budget,
        )
    elif a.what == "grid":
        rows = list(grid_rows())
        rows.sort(key=lambda r: r.model != "latent-ode")  # the dearest runs first
        for s in rows:  # workers started side by side claim rows through lock files
            name = f"{s.model}_{s.data}_{s.task_kind}_{s.fraction}_{s.mode}_s{a.seed}.json"
            a.out.mkdir(parents=True, exist_ok=True)
            if (a.out / name).exists():
                continue
            try:
                os.close(os.open(a.out / (name + ".lock"), os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                continue
            run(s, a.iterations, a.batch, a.lr, a.seed, a.out, a.budget)
    elif a.what == "timing":
        timing(a.iterations, a.batch, a.seed, a.out)
    else:
        print(table(a.out))


if __name__ == "__main__":
    main()
