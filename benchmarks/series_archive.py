"""Series classification over the sets sktime bundles: odeflow's models against MiniRocket and
torchcde's neural CDE, at 0/30/50 % dropped time points, several seeds.

    python benchmarks/series_archive.py run --sets italy-power-demand gunpoint --drops 0 0.3 \
        --seeds 0 1 2 --models ode-rnn gru-d ncde minirocket torchcde --out docs/latent/archive.jsonl
    python benchmarks/series_archive.py table --out docs/latent/archive.jsonl

Every model sees exactly the series of tasks/sequence_classify.py (official split, the seeded
drop of time points, train and test alike, normalisation, stratified 20 % validation hold-out).
odeflow's random-cde (models.random_cde: untrained random CDE features, ridge readout with
leave-one-out alpha) is fitted in closed form on the fit + validation series, like MiniRocket.
Budget rules, the same for every trained model: odeflow's defaults (the iteration budget that
scales with the data, `tasks.sequence_classify_config.auto_iterations`, validation every 25
iterations, stop after `patience` validations without a validation cross-entropy lower by more
than `min_delta`, test the weights of the lowest validation cross-entropy; batch 16, Adam 1e-2
with cosine decay, gradient clip 10). odeflow's models run through `train_sequence_classify`;
the torchcde peer (`experiments/ncde_peer.py`'s model: Hermite spline with backward differences
through time and values, NaN for dropped values, RK4 one step per grid interval) runs the same
rule in the loop below. MiniRocket (sktime's MiniRocketMultivariate, 10,000 features, ridge
classifier with cross-validated alpha as in Dempster et al. 2021) is trained once on the training
split (fit + validation series) after the usual imputation: each channel linearly interpolated
over the set's time grid from its observed points (held constant beyond them). `--normalize
series` z-normalises each series on its own first (for every model of that run; its rows say so).

One JSON line per run is appended to --out (a run already there is skipped), so a long grid can
be stopped and resumed; `table` prints mean ± std over seeds and the median wall and CPU
seconds per run (the CPU seconds of this process: on a machine shared with other jobs the wall
seconds mostly measure the load).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

os.environ.setdefault("OMP_NUM_THREADS", "1")
# after MiniRocket ran in this process, a random-cde fit took 26 CPU s (GunPoint, 30 %) against 7
# alone; numba's worker threads (2 by default) are the suspect: one numba thread
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import torch  # noqa: E402

from odeflow.data.irregular import Series  # noqa: E402
from odeflow.tasks.sequence_classify import load_sequence_data, train_sequence_classify  # noqa: E402
from odeflow.tasks.sequence_classify_config import SequenceClassifyConfig, auto_iterations  # noqa: E402

SETS = (
    "arrow-head",
    "gunpoint",
    "italy-power-demand",
    "osuleaf",
    "acsf1",
    "plaid",
    "basic-motions",
    "japanese-vowels",
)
ODEFLOW = ("ode-rnn", "latent-ode", "gru-d", "ncde", "nrde", "random-cde")
PEERS = ("minirocket", "torchcde")
PROTOTYPES = ("nrde-random", "nrde-random-3")  # untrained random features + ridge (run_random_nrde)


def grid_of(series: List[Series]) -> torch.Tensor:
    return torch.unique(torch.cat([s.times for s in series]))


def imputed(series: List[Series], grid: torch.Tensor) -> torch.Tensor:
    """[N, D, len(grid)] float64: each channel linearly interpolated over the grid from its observed
    points, constant beyond the first / last (the usual imputation before MiniRocket)."""
    from odeflow.models.cde_splines import fill_missing

    D = series[0].values.shape[1]
    values = torch.zeros(len(series), grid.shape[0], D, dtype=torch.float64)
    mask = torch.zeros_like(values)
    for n, s in enumerate(series):
        idx = torch.searchsorted(grid, s.times)
        values[n, idx] = s.values.double()
        mask[n, idx] = s.mask.double()
    return fill_missing(grid.double(), values, mask).transpose(1, 2)


def run_minirocket(cfg: SequenceClassifyConfig) -> Dict[str, Any]:
    import numpy as np
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sktime.transformations.panel.rocket import MiniRocketMultivariate

    data = load_sequence_data(cfg)
    train = data.train + data.val
    grid = grid_of(train + data.test)
    x_tr, x_te = imputed(train, grid).numpy(), imputed(data.test, grid).numpy()
    y_tr = np.array([int(s.label) for s in train])
    y_te = np.array([int(s.label) for s in data.test])
    t0 = time.perf_counter()
    rocket = MiniRocketMultivariate(random_state=cfg.seed)
    f_tr = rocket.fit_transform(x_tr)
    clf = make_pipeline(StandardScaler(), RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)))
    clf.fit(f_tr, y_tr)
    acc = float((clf.predict(rocket.transform(x_te)) == y_te).mean())
    return dict(test_accuracy=acc, train_seconds=time.perf_counter() - t0, stopped="closed form")


def run_torchcde(cfg: SequenceClassifyConfig) -> Dict[str, Any]:
    """The torchcde neural CDE under odeflow's budget rule (auto budget, plateau, best weights)."""
    import torch.nn.functional as F
    import torchcde

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
    from ncde_peer import NeuralCDE, to_paths

    torch.manual_seed(cfg.seed)
    data = load_sequence_data(cfg)
    grid = grid_of(data.train + data.val + data.test)
    coeffs = {
        k: torchcde.hermite_cubic_coefficients_with_backward_differences(to_paths(v, grid))
        for k, v in (("train", data.train), ("val", data.val), ("test", data.test))
    }
    labels = {
        k: torch.tensor([int(s.label) for s in v])
        for k, v in (("train", data.train), ("val", data.val), ("test", data.test))
    }
    model = NeuralCDE(1 + data.num_variables, cfg.hidden, cfg.field_hidden, len(data.classes), 1.0)
    n = len(data.train)
    per_epoch = max(1, n // cfg.batch)
    iterations = auto_iterations(per_epoch)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, iterations)
    g = torch.Generator().manual_seed(cfg.seed)
    perm = torch.randperm(n, generator=g)
    best, best_it, best_state, bad = float("inf"), -1, None, 0
    reference = float("inf")
    t0, stopped = time.perf_counter(), "budget"

    def cross_entropy(split: str) -> torch.Tensor:
        model.eval()
        with torch.no_grad():
            c, y = coeffs[split], labels[split]
            out = torch.cat([model(c[i : i + 100]) for i in range(0, len(y), 100)])
        model.train()
        return out

    for it in range(iterations):
        k = it % per_epoch
        if k == 0 and it > 0:
            perm = torch.randperm(n, generator=g)
        idx = perm[k * cfg.batch : (k + 1) * cfg.batch]
        loss = F.cross_entropy(model(coeffs["train"][idx]), labels["train"][idx])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip or 10.0)
        opt.step()
        sched.step()
        if (it + 1) % cfg.val_every == 0 or it + 1 == iterations:
            val = float(F.cross_entropy(cross_entropy("val"), labels["val"]))
            if val < best:
                best, best_it = val, it
                best_state = {k2: v.detach().clone() for k2, v in model.state_dict().items()}
            if val < reference - cfg.min_delta:
                reference, bad = val, 0
            else:
                bad += 1
                if cfg.patience is not None and bad >= cfg.patience:
                    stopped = "plateau"
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
    pred = cross_entropy("test").argmax(-1)
    return dict(
        test_accuracy=float((pred == labels["test"]).float().mean()),
        train_seconds=time.perf_counter() - t0,
        stopped=f"{stopped} after {it + 1} of {iterations} (weights of {best_it})",
    )


def random_nrde_features(
    series: List[Series], fields: torch.Tensor, bias: torch.Tensor, edges: torch.Tensor, count_scale: float
) -> torch.Tensor:
    """[N, 3 R] float64: an untrained neural RDE with R hidden units run over the series' window
    log-signatures L_k (odeflow's `window_logsignatures` of the neural CDE's channels), one midpoint
    step per window of  dz/ds = sum_l tanh(A_l z + b_l) L_k,l  from z = 0; features: z after the
    last window, and the mean and the maximum of z over the windows."""
    from odeflow.data.irregular import collate
    from odeflow.models.logsignature import window_logsignatures
    from odeflow.models.ncde import control_channels

    out = []
    for i in range(0, len(series), 64):
        b = collate(series[i : i + 64])
        x = control_channels(b.times, b.values, b.mask, count_scale).double()
        logsig = window_logsignatures(b.times.double(), x, edges)  # [B, W, L]
        z = x.new_zeros(x.shape[0], fields.shape[1])
        total, top = torch.zeros_like(z), torch.full_like(z, -float("inf"))
        for k in range(logsig.shape[1]):

            def f(z: torch.Tensor, k: int = k) -> torch.Tensor:
                return (torch.einsum("lnm,bm->bln", fields, z) + bias).tanh().mul(logsig[:, k].unsqueeze(-1)).sum(1)

            z = z + f(z + 0.5 * f(z))
            total, top = total + z, torch.maximum(top, z)
        out.append(torch.cat([z, total / logsig.shape[1], top], -1))
    return torch.cat(out)


def run_random_nrde(cfg: SequenceClassifyConfig, shares: Tuple[float, ...] = (1.0,)) -> Dict[str, Any]:
    """A prototype, not an odeflow model: random neural-RDE features (as random signatures, as a
    reservoir) + MiniRocket's standardised ridge classifier with cross-validated alpha, fitted on
    the fit + validation series. One scale per share: share x W windows (W the nrde default, about
    4 sqrt(points), over the longest training span; `nrde-random` W, `nrde-random-3` W/4, W/2
    and W), each its own random field with R = 512 hidden units (fewer where the log-signature is wide, so that a field holds at
    most 2^24 numbers), A_l ~ N(0, 4 / R), b_l ~ N(0, 1)."""
    import math

    import numpy as np
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from odeflow.models.logsignature import logsignature_channels
    from odeflow.models.nrde import default_windows

    data = load_sequence_data(cfg, torch.float64)
    train = data.train + data.val
    t0 = time.perf_counter()
    longest = max(int(s.times.shape[0]) for s in train)
    start, end = min(float(s.times[0]) for s in train), max(float(s.times[-1]) for s in train)
    L = logsignature_channels(1 + 2 * data.num_variables)
    R = min(512, int(math.sqrt(2**24 / L)))
    g = torch.Generator().manual_seed(cfg.seed)
    f_tr, f_te = [], []
    for share in shares:
        edges = torch.linspace(start, end, max(1, round(share * default_windows(longest))) + 1, dtype=torch.float64)
        fields = torch.randn(L, R, R, generator=g, dtype=torch.float64) * 2 / math.sqrt(R)
        bias = torch.randn(L, R, generator=g, dtype=torch.float64)
        f_tr.append(random_nrde_features(train, fields, bias, edges, 1.0 / longest))
        f_te.append(random_nrde_features(data.test, fields, bias, edges, 1.0 / longest))
    y_tr = np.array([int(s.label) for s in train])
    y_te = np.array([int(s.label) for s in data.test])
    clf = make_pipeline(StandardScaler(), RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)))
    clf.fit(torch.cat(f_tr, -1).numpy(), y_tr)
    acc = float((clf.predict(torch.cat(f_te, -1).numpy()) == y_te).mean())
    return dict(
        test_accuracy=acc, train_seconds=time.perf_counter() - t0, stopped=f"closed form ({len(shares)} x {R} units)"
    )


def run_odeflow(cfg: SequenceClassifyConfig) -> Dict[str, Any]:
    t0 = time.perf_counter()
    s = train_sequence_classify(cfg, None, progress=False)
    out = dict(
        test_accuracy=s["test_accuracy"],
        train_seconds=time.perf_counter() - t0,
        stopped=f"{s['stopped']} after {s['iterations']} ({s['budget']}; {s['tested_weights']})",
    )
    if "warning" in s:
        out["warning"] = s["warning"]
    for key in ("loo_accuracy", "path_weight", "alpha"):  # random-cde: what its leave-one-out fit chose
        if key in s:
            out[key] = s[key]
    return out


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    out = Path(args.out)
    done = set()
    if out.exists():
        for line in out.read_text().splitlines():
            r = json.loads(line)
            done.add((r["set"], r["drop"], r["seed"], _label(r)))
    for name in args.sets:
        for drop in args.drops:
            for seed in args.seeds:
                for model in args.models:
                    key = (name, drop, seed, _label(dict(model=model, normalize=args.normalize)))
                    if key in done:
                        continue
                    cfg = SequenceClassifyConfig(
                        model=model if model in ODEFLOW else "ode-rnn",
                        data=name,
                        drop=drop,
                        seed=seed,
                        normalize=args.normalize,
                    )
                    t0, c0 = time.perf_counter(), time.process_time()
                    if model == "minirocket":
                        r = run_minirocket(cfg)
                    elif model == "torchcde":
                        r = run_torchcde(cfg)
                    elif model == "nrde-random":
                        r = run_random_nrde(cfg)
                    elif model == "nrde-random-3":
                        r = run_random_nrde(cfg, (0.25, 0.5, 1.0))
                    else:
                        r = run_odeflow(cfg)
                    r.update(set=name, drop=drop, seed=seed, model=model, wall_seconds=time.perf_counter() - t0)
                    r["cpu_seconds"] = time.process_time() - c0  # this process's CPU time: what a loaded machine hides

                    if args.normalize != "channel":
                        r["normalize"] = args.normalize
                    with out.open("a") as f:
                        f.write(json.dumps(r) + "\n")
                    print(json.dumps(r), flush=True)


def _label(r: Dict[str, Any]) -> str:
    """A row's model, with ' (z-norm per series)' when its series were normalised one by one."""
    return r["model"] + (" (z-norm per series)" if r.get("normalize", "channel") == "series" else "")


def table(args: argparse.Namespace) -> None:
    rows = [json.loads(line) for line in Path(args.out).read_text().splitlines()]
    for r in rows:
        r["model"] = _label(r)
    sets = [s for s in SETS if any(r["set"] == s for r in rows)]
    drops = sorted({r["drop"] for r in rows})
    order = [m for base in ODEFLOW + PROTOTYPES + PEERS for m in (base, base + " (z-norm per series)")]
    models = [m for m in order if any(r["model"] == m for r in rows)]
    head = (
        "| set | model | "
        + " | ".join(f"{d:.0%} dropped" for d in drops)
        + " | s per run (median) | CPU s per run (median) |"
    )
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for s in sets:
        for m in models:
            cells, secs, cpu = [], [], []
            for d in drops:
                accs = [100 * r["test_accuracy"] for r in rows if (r["set"], r["model"], r["drop"]) == (s, m, d)]
                secs += [r["wall_seconds"] for r in rows if (r["set"], r["model"], r["drop"]) == (s, m, d)]
                cpu += [
                    r["cpu_seconds"]
                    for r in rows
                    if (r["set"], r["model"], r["drop"]) == (s, m, d) and "cpu_seconds" in r
                ]
                warn = sum(1 for r in rows if (r["set"], r["model"], r["drop"]) == (s, m, d) and "warning" in r)
                if not accs:
                    cells.append("not run")
                    continue
                sd = f" ± {statistics.stdev(accs):.1f}" if len(accs) > 1 else ""
                cells.append(
                    f"{statistics.mean(accs):.1f}{sd} ({len(accs)} seed{'s' if len(accs) > 1 else ''}"
                    f"{f', {warn} at chance' if warn else ''})"
                )
            med = f"{statistics.median(secs):.0f}" if secs else "-"
            med_cpu = f"{statistics.median(cpu):.0f}" if cpu else "-"
            print(f"| {s} | {m} | " + " | ".join(cells) + f" | {med} | {med_cpu} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    r.add_argument("--drops", nargs="+", type=float, default=[0.0, 0.3, 0.5])
    r.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    r.add_argument("--models", nargs="+", default=list(ODEFLOW + PEERS), choices=ODEFLOW + PROTOTYPES + PEERS)
    r.add_argument("--out", default="docs/latent/series_archive.jsonl")
    r.add_argument(
        "--normalize", default="channel", choices=("channel", "series"), help="series: z-normalise each series first"
    )
    t = sub.add_parser("table")
    t.add_argument("--out", default="docs/latent/series_archive.jsonl")
    args = p.parse_args()
    run(args) if args.cmd == "run" else table(args)


if __name__ == "__main__":
    main()
