"""The command line's flow-matching defaults for `train cnf|tabular|image`.

With ``--objective flow-matching`` and nothing else said, a run takes ``--lr 5e-3`` and
``--net-time reversed`` (with the EMA 0.99 that `ObjectiveConfig.ema_decay` gives every
flow-matching run, warmup offset 50): first or level with the first entry at every checkpoint
measured on the five data sets of benchmarks/cnf_objectives.py (docs/cnf.md, "Flow-matching
defaults" and "The EMA's warmup offset and lr 5e-3"). A value given on the command
line or in a config file the user named wins; the recipe files odeflow picks by itself
(configs/<data>.toml, configs/image_<data>.toml) hold likelihood settings and do not count.
Likelihood runs keep their defaults. summary.json records the lr and net time a run used.
"""

from __future__ import annotations

import argparse
from typing import Any, Dict, Iterable

_LEARNED_END_TIME = ("learn_T", "train_T")  # net time 'reversed' needs a fixed T


def apply_flow_matching_defaults(values: Dict[str, Any], explicit: Iterable[str]) -> Dict[str, Any]:
    """``values`` with FM_DEFAULTS filled in where the objective is flow matching and the key was
    not set explicitly (net time stays 't' where the end time is learned, which refuses it)."""
    if values.get("objective") != "flow-matching":
        return values
    from ..tasks.objective_config import FM_DEFAULTS  # here: importing the CLI loads no torch

    explicit = set(explicit)
    for key, default in FM_DEFAULTS.items():
        if key in explicit:
            continue
        if key == "net_time" and any(values.get(k) for k in _LEARNED_END_TIME):
            continue
        values[key] = default
    return values


def note_flow_matching_defaults(p: argparse.ArgumentParser) -> None:
    """The help of each such option says both defaults: '(default 0.01; flow matching: 0.003)'."""
    from ..tasks.objective_config import FM_DEFAULTS

    for action in p._actions:
        if action.dest in FM_DEFAULTS and action.help and action.help.endswith(")"):
            action.help = f"{action.help[:-1]}; flow matching: {FM_DEFAULTS[action.dest]})"
