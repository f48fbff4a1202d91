"""The theta optimizer and its learning-rate schedule, from the TrainingConfig."""

from __future__ import annotations

from typing import Iterable, Optional

import torch
from torch import nn

from .config import TrainingConfig


def make_optimizer(cfg: TrainingConfig, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    params = list(params)
    if not params:
        raise ValueError("the task's model has no trainable parameters")
    capturable = bool(cfg.cuda_graph)  # its step counter stays on the GPU (False is torch's default)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, capturable=capturable)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, capturable=capturable)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)


def make_lr_scheduler(
    cfg: TrainingConfig, opt: torch.optim.Optimizer
) -> Optional[torch.optim.lr_scheduler.LRScheduler]:
    if cfg.lr_schedule == "constant":
        return None
    if cfg.schedule and any("lr" in stage for stage in cfg.schedule):
        raise ValueError(
            "a multilevel schedule that sets lr cannot be combined with lr_schedule "
            f"{cfg.lr_schedule!r}; drop one of them"
        )
    return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.iterations)


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    """Every group's lr; a tensor lr (a compiled update's) is changed in place, so the compiled
    update reads the new value without compiling again."""
    for group in opt.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr


def lr_value(opt: torch.optim.Optimizer) -> float:
    """The first group's lr as a float (a tensor lr included)."""
    return float(opt.param_groups[0]["lr"])
