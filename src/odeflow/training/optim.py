"""The theta optimizer and its learning-rate schedule, from the TrainingConfig.

Adam and AdamW run PyTorch's fused kernel where it applies (floating-point parameters
all on the CPU or all on CUDA GPUs, no CUDA-graph capture): one kernel updates every parameter, where
the default single-tensor loop launches about ten small ops per parameter tensor. The update is
the same algorithm (Kingma & Ba 2015) up to rounding; on the CPU it made a flow-matching step of
the FFJORD toy net ~1.4x faster (benchmarks/fm_step.py).
"""

from __future__ import annotations

from typing import Iterable, List, Optional

import torch
from torch import nn

from .config import TrainingConfig

FUSED_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def fused_applies(params: List[nn.Parameter], cuda_graph: bool = False) -> bool:
    """Whether torch's fused Adam kernel takes these parameters: all on the CPU or all on CUDA
    GPUs, floating dtypes it supports, and no CUDA-graph capture (that keeps torch's capturable
    single-tensor update)."""
    if cuda_graph or not params:
        return False
    kinds = {p.device.type for p in params}
    return kinds in ({"cpu"}, {"cuda"}) and all(p.dtype in FUSED_DTYPES for p in params)


def make_optimizer(cfg: TrainingConfig, params: Iterable[nn.Parameter], fused: bool = True) -> torch.optim.Optimizer:
    """The config's optimizer; Adam/AdamW fused where `fused_applies` (``fused=False``: never)."""
    params = list(params)
    if not params:
        raise ValueError("the task's model has no trainable parameters")
    capturable = bool(cfg.cuda_graph)  # its step counter stays on the GPU (False is torch's default)
    use_fused = True if fused and fused_applies(params, capturable) else None  # None: torch's default
    if cfg.optimizer == "adam":
        return torch.optim.Adam(
            params, lr=cfg.lr, weight_decay=cfg.weight_decay, capturable=capturable, fused=use_fused
        )
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(
            params, lr=cfg.lr, weight_decay=cfg.weight_decay, capturable=capturable, fused=use_fused
        )
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
