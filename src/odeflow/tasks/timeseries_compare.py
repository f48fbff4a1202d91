"""Both gradient modes from the same initialisation, over one or more seeds (seed 000 Fig. 3
and its "94–99% less training time" claim, checked on this code)."""

from __future__ import annotations

import json
import statistics
from dataclasses import replace
from pathlib import Path
from typing import Dict, List, Optional

from .timeseries import TimeSeriesConfig, TrainResult, train_timeseries
from .timeseries_config import MODES


def compare_modes(
    cfg: TimeSeriesConfig, seeds: List[int], out: Optional[Path] = None, progress: bool = True
) -> Dict[str, List[TrainResult]]:
    results: Dict[str, List[TrainResult]] = {"disc-opt": [], "opt-disc": []}
    for seed in seeds:
        for mode in MODES:
            run_cfg = replace(cfg, mode=mode, seed=seed, check_at=cfg.check_at if seed == seeds[0] else [])
            run_out = out / f"seed{seed}_{mode}" if out is not None and seed == seeds[0] else None
            results[mode].append(train_timeseries(run_cfg, run_out, progress=progress))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        from .timeseries_figures import plot_losses

        plot_losses(out / "loss_both_modes.png", {m: r[0] for m, r in results.items()})
        (out / "comparison.md").write_text(comparison_table(results, cfg.loss_threshold))
        (out / "comparison.json").write_text(
            json.dumps(
                {
                    m: [
                        dict(
                            ms_per_iter=r.ms_per_iter,
                            final_loss=r.final_loss,
                            iters_to_threshold=r.iters_to_threshold,
                            time_to_threshold=r.time_to_threshold,
                            total_time=r.wall[-1],
                            nfe_forward=r.nfe_forward,
                            nfe_backward=r.nfe_backward,
                        )
                        for r in rs
                    ]
                    for m, rs in results.items()
                },
                indent=1,
            )
        )
    return results


def _mean(xs: List[Optional[float]]) -> Optional[float]:
    known = [x for x in xs if x is not None]
    return statistics.mean(known) if known else None


def _fmt(x: Optional[float], spec: str = ".1f") -> str:
    return "not reached" if x is None else format(x, spec)


def comparison_table(results: Dict[str, List[TrainResult]], threshold: float) -> str:
    """Markdown table of both modes; per-seed time saved to reach the loss threshold."""
    lines = [
        f"| mode | ms/iter | NFE fwd/bwd per iter | iterations to loss < {threshold:g} | "
        "time to threshold (s) | final loss | total time (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode, rs in results.items():
        reached = sum(r.iters_to_threshold is not None for r in rs)
        lines.append(
            f"| {mode} | {_mean([r.ms_per_iter for r in rs]):.1f} | {_mean([r.nfe_forward for r in rs]):.0f}/"
            f"{_mean([r.nfe_backward for r in rs]):.0f} | {_fmt(_mean([r.iters_to_threshold for r in rs]))} "
            f"({reached}/{len(rs)} seeds) | {_fmt(_mean([r.time_to_threshold for r in rs]), '.2f')} | "
            f"{_mean([r.final_loss for r in rs]):.3g} | {_mean([r.wall[-1] for r in rs]):.2f} |"
        )
    do, od = results["disc-opt"], results["opt-disc"]
    saved = [
        1 - a.time_to_threshold / b.time_to_threshold
        for a, b in zip(do, od)
        if a.time_to_threshold is not None and b.time_to_threshold is not None
    ]
    ratio = _mean([b.ms_per_iter / a.ms_per_iter for a, b in zip(do, od)])
    lines.append("")
    lines.append(f"ms/iter ratio opt-disc / disc-opt: {ratio:.1f}x.")
    if saved:
        lines.append(
            f"Time saved by disc-opt to reach the threshold: mean {100 * statistics.mean(saved):.1f}% "
            f"(min {100 * min(saved):.1f}%, max {100 * max(saved):.1f}%) over {len(saved)} seeds "
            "where both modes reached it."
        )
    else:
        lines.append("No seed where both modes reached the threshold.")
    return "\n".join(lines) + "\n"
