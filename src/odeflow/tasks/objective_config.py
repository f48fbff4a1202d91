"""Settings shared by the flow tasks (cnf, tabular, image): the training objective and the
test-time evaluation. Plain data, no torch, so the command line builds its options from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Literal, Mapping, Optional

from ..training.config_types import NonNegativeFloat, PositiveInt

OBJECTIVES = ("likelihood", "flow-matching")
NET_TIMES = ("t", "reversed")
# The EMA decay of flow-matching runs without --ema (docs/cnf.md, "An EMA of the weights").
FM_EMA_DECAY = 0.99  # the help text of `ema` below names it
# The EMA's warmup offset w in beta_n = min(decay, (1 + n) / (w + n)) (odeflow.training.ema): early
# on the average spans ~n / (w - 1) steps (docs/cnf.md, "The EMA's warmup offset").
FM_EMA_WARMUP = 50.0
# What `odeflow train cnf|tabular|image --objective flow-matching` uses unless told otherwise
# (odeflow.cli.fm_defaults; docs/cnf.md, "Flow-matching defaults"); configs built in code keep
# the dataclass defaults.
FM_DEFAULTS: Dict[str, Any] = {"lr": 5e-3, "net_time": "reversed"}


def validate_net_time(net_time: str, learned_T: bool, learn_flag: str) -> None:
    """Raise ValueError unless the net's time input is t or reversed (T - t, for a fixed T only)."""
    if net_time not in NET_TIMES:
        raise ValueError(f"unknown net_time {net_time!r}; valid: {', '.join(NET_TIMES)}")
    if net_time == "reversed" and learned_T:
        raise ValueError(f"net_time 'reversed' reads the net at T - t for a fixed T; drop {learn_flag} or --net-time")


@dataclass
class ObjectiveConfig:
    objective: Literal["likelihood", "flow-matching"] = (
        "likelihood"  # likelihood (FFJORD/RNODE, a solve per step) or flow-matching (regression, one net evaluation per step)
    )
    path: Literal["ot", "vp"] = "ot"  # flow matching: ot (linear, sigma_min) or vp (variance preserving)
    coupling: Literal["independent", "minibatch-ot"] = (
        "independent"  # flow matching: data/noise pairing (minibatch-ot: exact assignment, POT or scipy)
    )
    sigma_min: NonNegativeFloat = 0.0  # flow matching, path ot: noise left at the data end (0: rectified flow)
    finetune_likelihood: int = 0  # flow matching: the last N iterations train by likelihood (+ RNODE terms where set)
    eval_divergence: Literal["exact", "hutchinson"] = (
        "exact"  # test evaluation trace: exact or hutchinson (unbiased, with a standard error)
    )
    eval_probes: PositiveInt = 1  # hutchinson test evaluation: probes per row
    ema: Optional[float] = (
        None  # EMA decay of the weights that validation, test, best.pt and sampling use (0: off; unset: 0.99 with flow matching, off with likelihood)
    )

    def validate_objective(self, iterations: int) -> None:
        """Raise ValueError naming the first objective/evaluation setting that cannot work."""
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; valid: {', '.join(OBJECTIVES)}")
        if self.path not in ("ot", "vp"):
            raise ValueError(f"unknown path {self.path!r}; valid: ot, vp")
        if self.coupling not in ("independent", "minibatch-ot"):
            raise ValueError(f"unknown coupling {self.coupling!r}; valid: independent, minibatch-ot")
        if not 0 <= self.sigma_min < 1:
            raise ValueError(f"sigma_min must be in [0, 1); got {self.sigma_min!r}")
        if not isinstance(self.finetune_likelihood, int) or self.finetune_likelihood < 0:
            raise ValueError(f"finetune_likelihood must be an integer >= 0; got {self.finetune_likelihood!r}")
        if self.finetune_likelihood and self.objective != "flow-matching":
            raise ValueError("finetune_likelihood follows flow matching: add --objective flow-matching or drop it")
        if self.finetune_likelihood > iterations:
            raise ValueError(
                f"finetune_likelihood ({self.finetune_likelihood}) exceeds iterations ({iterations}); lower it"
            )
        if self.eval_divergence not in ("exact", "hutchinson"):
            raise ValueError(f"unknown eval_divergence {self.eval_divergence!r}; valid: exact, hutchinson")
        if self.eval_probes < 1:
            raise ValueError(f"eval_probes must be >= 1; got {self.eval_probes!r}")
        ema = self.ema
        if ema is not None and (isinstance(ema, bool) or not isinstance(ema, (int, float)) or not 0 <= ema < 1):
            raise ValueError(f"ema (the EMA decay) must be in [0, 1), e.g. 0.999, or 0 to turn it off; got {ema!r}")
        if self.eval_probes > 1 and self.eval_divergence == "exact":
            raise ValueError("eval_probes applies to --eval-divergence hutchinson; drop it or switch the divergence")

    def ema_decay(self) -> float:
        """The EMA decay in effect: ``ema`` where set, else FM_EMA_DECAY with flow matching, 0 (off) with likelihood."""
        if self.ema is not None:
            return float(self.ema)
        return FM_EMA_DECAY if self.objective == "flow-matching" else 0.0

    def flow_matching_at(self, iteration: int, iterations: int) -> bool:
        """Whether `iteration` (0-based) trains by flow matching."""
        return self.objective == "flow-matching" and iteration < iterations - self.finetune_likelihood


def ms_per_iteration_by_kind(
    history: Iterable[Mapping[str, Any]], cfg: ObjectiveConfig, iterations: int
) -> Dict[str, float]:
    """Mean training ms per iteration of the flow-matching and the likelihood iterations apart
    (from the metrics rows' cumulative `wall_time`): a run's one ms/iter mixes steps whose costs
    differ ~20x when likelihood fine-tuning follows flow matching."""
    times: Dict[str, List[float]] = {"flow_matching": [], "likelihood": []}
    previous = 0.0
    for row in sorted(history, key=lambda r: int(r["iteration"])):
        wall = float(row["wall_time"])
        kind = "flow_matching" if cfg.flow_matching_at(int(row["iteration"]), iterations) else "likelihood"
        times[kind].append(wall - previous)
        previous = wall
    return {f"ms_per_iter_{k}": 1e3 * sum(v) / len(v) for k, v in times.items() if v}
