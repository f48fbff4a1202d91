"""Per-sample solving where the samples differ: series models on JapaneseVowels and the tabular
CNF's test NLL on digits, the union grid / shared step against each sample on its own steps.

Series (sktime's bundled UEA JapaneseVowels: 12 channels, lengths 7-29, 270 / 370 series; the
`sequence-classify` task's data, normalisation and split, float32): the ODE-RNN classifier and the
latent ODE with adaptive dopri5 ODE solves (rtol 1e-3, atol 1e-4, `ode_rtol`), after a short
training (40 Adam steps on the union grid, the same weights for both sides). Per data set
(`drop` 0 and 0.5 of the time points, per series) and model: an evaluation pass over the test set
(chunks of 100 series) and one training step (loss and backward on a batch of 16), each side by
side: the union grid of a chunk's times (`collate`) against each series on its own times
(`collate_rows`, `solve(..., per_sample=True)`).

CNF (`odeflow train tabular --data digits`, a run's best.pt/last.pt given with --checkpoint): the
test NLL with the task's adaptive test solver (dopri5, rtol 1e-6, atol 1e-8, exact trace) on the
first --rows test rows in one chunk: shared step against `per_sample=True` and
`PerSample(compact=0.5)` and `PerSample(compact=1)` (only the running rows are evaluated once
one has finished). "row evals" counts the rows evaluated (the exact trace costs D VJPs per row).

Counts: "batched evals" = calls of the vector field (each on a batch of rows), "sample-steps" =
the accepted plus rejected steps summed over the rows (a shared step counts once per row).

    python benchmarks/per_sample_models.py [--series] [--checkpoint RUN/best.pt --rows 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine, time_side_by_side  # noqa: E402

import odeflow.models.ode_solver as ode_solver_module  # noqa: E402
from odeflow.data.irregular import collate, collate_rows  # noqa: E402
from odeflow.flows.per_sample_eval import transform_per_sample  # noqa: E402
from odeflow.tasks.sequence_classify import (  # noqa: E402
    SequenceClassifyTask,
    SequenceData,
    build_sequence_classifier,
    evaluate_sequences,
    load_sequence_data,
)
from odeflow.tasks.sequence_classify_config import SequenceClassifyConfig  # noqa: E402


@contextmanager
def counting(totals: Dict[str, int]) -> Iterator[None]:
    """Adds every model solve's batched evaluations and sample-steps to `totals`."""
    original = ode_solver_module.solve

    def counted(func: Callable, y0: Any, t: Any, **kw: Any):
        sol = original(func, y0, t, **kw)
        rows = 1 if kw.get("per_sample") else (y0[0] if isinstance(y0, tuple) else y0).shape[0]
        totals["evals"] += int(sol.stats.nfe)
        totals["sample_steps"] += int(sol.stats.steps) * rows
        return sol

    ode_solver_module.solve = counted  # type: ignore[assignment]
    try:
        yield
    finally:
        ode_solver_module.solve = original  # type: ignore[assignment]


def physionet_data(records: int) -> SequenceData:
    """Synthetic PhysioNet-format ICU stays (`data.physionet_synthetic`, 36 variables over 48 h,
    about 50-60 own measurement times per stay, quantised to 0.1 h), times scaled to [0, 1]
    (hours / 48), normalised; half for training, half for testing."""
    import tempfile

    from odeflow.data.irregular import Normalizer, Series
    from odeflow.data.physionet import load_physionet
    from odeflow.data.physionet_synthetic import write_synthetic_physionet

    with tempfile.TemporaryDirectory() as tmp:
        series, _ = load_physionet(write_synthetic_physionet(Path(tmp), records, seed=0), quantization=0.1)
    series = [Series(s.times / 48.0, s.values, s.mask, s.label or 0.0, s.name) for s in series]
    half = len(series) // 2
    norm = Normalizer.fit(series[:half])
    train, test = norm.apply(series[:half]), norm.apply(series[half:])
    return SequenceData(train, [], test, ["survived", "died"], train[0].values.shape[1])


def series_rows(repeats: int, records: int) -> List[str]:
    lines = []
    cases = [("japanese-vowels", drop) for drop in (0.0, 0.5)] + [("physionet-synthetic", 0.0)]
    physionet = physionet_data(records) if records > 0 else None
    for (name, drop), model in itertools.product(cases, ("ode-rnn", "latent-ode")):
        if name == "physionet-synthetic" and physionet is None:
            continue
        cfg = SequenceClassifyConfig(model=model, data="japanese-vowels", drop=drop, ode_rtol=1e-3, seed=0)
        data = load_sequence_data(cfg) if physionet is None or name != "physionet-synthetic" else physionet
        torch.manual_seed(0)
        net = build_sequence_classifier(cfg, data)
        task = SequenceClassifyTask(cfg)
        task.model = net
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        gen = torch.Generator().manual_seed(0)
        for it in range(40):
            idx = torch.randperm(len(data.train), generator=gen)[:16].tolist()
            opt.zero_grad()
            task.training_loss((it, collate([data.train[i] for i in idx]))).loss.backward()
            opt.step()
        batch = [data.train[i] for i in range(16)]
        sides = {"union": False, "per-sample": True}
        counts: Dict[str, Dict[str, int]] = {}
        logits: Dict[str, torch.Tensor] = {}
        for side, rows in sides.items():
            totals = {"evals": 0, "sample_steps": 0}
            with counting(totals):
                ce, pred, y = evaluate_sequences(net, data.test, per_sample=rows)
            counts[side] = totals
            logits[side] = ce
        acc = {
            n: float((evaluate_sequences(net, data.test, per_sample=r)[1] == y).float().mean())
            for n, r in sides.items()
        }

        def step(rows: bool) -> Callable[[], None]:
            b = (collate_rows if rows else collate)(batch)

            def run() -> None:
                net.zero_grad()
                task.training_loss((40, b)).loss.backward()

            return run

        def evaluation(rows: bool) -> Callable[[], None]:
            return lambda: evaluate_sequences(net, data.test, per_sample=rows)

        t_eval = time_side_by_side({n: evaluation(r) for n, r in sides.items()}, repeats=repeats, min_time=0.0)
        t_step = time_side_by_side({n: step(r) for n, r in sides.items()}, repeats=repeats, min_time=0.0)
        net.train()
        u, p = counts["union"], counts["per-sample"]
        diff = float((logits["union"] - logits["per-sample"]).abs().max())
        lines.append(
            f"| {name} | {model} | {drop} | {u['evals']:,} / {p['evals']:,} | {u['sample_steps']:,} / {p['sample_steps']:,} "
            f"| {t_eval['union'] * 1e3:.0f} / {t_eval['per-sample'] * 1e3:.0f} | "
            f"**{t_eval['per-sample'] / t_eval['union']:.2f}** | {t_step['union'] * 1e3:.0f} / "
            f"{t_step['per-sample'] * 1e3:.0f} | **{t_step['per-sample'] / t_step['union']:.2f}** | "
            f"{acc['union']:.3f} / {acc['per-sample']:.3f} | {diff:.1e} |"
        )
        print(lines[-1], flush=True)
    return lines


def cnf_rows(checkpoint: Path, rows: int, repeats: int) -> List[str]:
    from odeflow.data.tabular import load_tabular
    from odeflow.flows.stacked import using_solver
    from odeflow.solvers.stepping import Adaptive
    from odeflow.tasks.tabular import load_tabular_flow

    flow, cfg = load_tabular_flow(checkpoint)
    data = load_tabular(cfg.data, cfg.data_dir, seed=cfg.seed)
    x = torch.tensor(data.test[:rows], dtype=next(flow.parameters()).dtype)
    step = Adaptive(1e-6, 1e-8)
    n = x.shape[0]
    compacts = (0.0, 0.5, 1.0)
    with using_solver(flow, "dopri5", step):
        z, l_shared = flow.transform(x)
        evals = {"shared": sum(b.last_stats.nfe for b in flow.cnfs)}
        row_evals = {"shared": evals["shared"] * n}
        sample_steps = {"shared": sum(b.last_stats.steps for b in flow.cnfs) * n}
        diff = 0.0
        for c in compacts:
            z, l_rows = transform_per_sample(flow, x, c)
            evals[str(c)] = sum(b.last_stats.nfe for b in flow.cnfs)
            row_evals[str(c)] = sum(int(b.last_stats.per_sample.nfe.sum()) for b in flow.cnfs)  # type: ignore[attr-defined]
            sample_steps[str(c)] = sum(b.last_stats.steps for b in flow.cnfs)
            diff = max(diff, float((l_rows - l_shared).abs().max()))
        sides: Dict[str, Callable[[], object]] = {"shared": lambda: flow.transform(x)}
        for c in compacts:
            sides[str(c)] = lambda c=c: transform_per_sample(flow, x, c)
        t = time_side_by_side(sides, repeats=repeats, min_time=0.0)
    keys = ["shared"] + [str(c) for c in compacts]
    lines = [
        f"| digits ({x.shape[1]}-D, {len(flow.cnfs)} block(s), {x.dtype}) | {n} | "
        f"{sample_steps['shared']:,} / {sample_steps['0.0']:,} | "
        + " / ".join(f"{evals[k]}" for k in keys)
        + " | "
        + " / ".join(f"{row_evals[k]:,}" for k in keys)
        + " | "
        + " / ".join(f"{t[k] * 1e3:.0f}" for k in keys)
        + " | "
        + " / ".join(f"**{t[k] / t['shared']:.2f}**" for k in keys[1:])
        + f" | {diff:.1e} |"
    ]
    print(lines[-1], flush=True)
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--series", action="store_true", help="the JapaneseVowels rows")
    ap.add_argument("--checkpoint", type=Path, help="a tabular digits run's best.pt / last.pt (the CNF rows)")
    ap.add_argument("--rows", type=int, default=64)
    ap.add_argument("--records", type=int, default=200, help="synthetic PhysioNet stays (0: none)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(machine())
    if args.series:
        print(
            "| data | model | drop | batched evals: union / per-sample | sample-steps: union / per-sample | eval ms: union / "
            "per-sample | per-sample / union (eval) | train step ms: union / per-sample | per-sample / union (step) | "
            "test accuracy: union / per-sample | max |CE diff| |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        series_rows(args.repeats, args.records)
    if args.checkpoint is not None:
        print(
            "| flow | rows | sample-steps: shared / per-sample | batched evals: shared / per-sample / compact=0.5 / "
            "compact=1 | row evals (same) | ms (same) | per-sample / shared: plain / compact=0.5 / compact=1 | "
            "max |NLL diff| |"
        )
        print("|---|---|---|---|---|---|---|---|")
        cnf_rows(args.checkpoint, args.rows, args.repeats)


if __name__ == "__main__":
    main()
