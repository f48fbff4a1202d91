"""ODE-Net classifiers and their variants (Chen et al. 2018; seed 002 §1 and Extensions).

    logits = head(pool(block(augment(stem(x)))))

kinds:
    odenet  block = ODE block, dh/dt = f(t, h)                              (Chen et al. 2018)
    resnet  block = the Euler ResNet twin of the same f (same parameters)    (He et al. 2016)
    anode   augment appends ``augment`` zero channels/dims, then an ODE block  (Dupont et al. 2019)
    sonode  block = second-order ODE d²h/dt² = g(h, dh/dt, t), v(0) = 0,
            solved as a first-order system on (h, v); the head reads h(T)  (Norcliffe et al. 2020)
Images (``conv``): stem = 3x3 conv, GroupNorm, ReLU, then ``downsample`` stride-2 4x4 convs;
head = GroupNorm, ReLU, global average pool, linear. Vectors (``mlp``): stem = identity (or a
linear map to ``width`` features), head = linear. A plain ODE block on vectors is a
homeomorphism of R^d, so it cannot pull apart nested classes (the annuli); augmentation can.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from ..solvers.solution import SolverStats
from ..solvers.stepping import Adaptive, FixedStep
from .classifier_fields import ConvField, MLPField, SecondOrder, group_norm
from .ode_block import EulerStack, ODEBlock, StepControl

KINDS = ("odenet", "resnet", "anode", "sonode")


@dataclass
class ClassifierOutput:
    """logits [batch, classes]; kinetic: per-sample E(T) or None; stats of the block's solve."""

    logits: Tensor
    kinetic: Optional[Tensor]
    stats: SolverStats


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown classifier {kind!r}; valid: {', '.join(KINDS)}")


class Augment(nn.Module):
    """Append ``extra`` zero channels (dim 1): [B, C, ...] -> [B, C + extra, ...] (ANODE)."""

    def __init__(self, extra: int) -> None:
        super().__init__()
        if extra < 0:
            raise ValueError(f"augment must be >= 0; got {extra}")
        self.extra = extra

    def forward(self, h: Tensor) -> Tensor:
        if self.extra == 0:
            return h
        zeros = h.new_zeros(h.shape[0], self.extra, *h.shape[2:])
        return torch.cat([h, zeros], dim=1)


class ODEClassifier(nn.Module):
    """stem -> augment -> block -> head. ``block`` is an `ODEBlock` or `EulerStack`; with
    ``second_order`` the block's state is (h, v) with v(0) = 0 and the head reads h."""

    block: Union[ODEBlock, EulerStack]

    def __init__(
        self,
        kind: str,
        stem: nn.Module,
        augment: Augment,
        block: Union[ODEBlock, EulerStack],
        head: nn.Module,
        num_classes: int,
        second_order: bool = False,
    ) -> None:
        super().__init__()
        check_kind(kind)
        self.kind, self.stem, self.augment, self.block, self.head = kind, stem, augment, block, head
        self.num_classes, self.second_order = num_classes, second_order

    @property
    def kinetic(self) -> float:
        return float(getattr(self.block, "kinetic", 0.0))

    def set_solver(self, method: str, step: StepControl) -> None:
        """Change the ODE solver (no effect on the ResNet, whose discretization is its architecture)."""
        if isinstance(self.block, ODEBlock):
            self.block.set_solver(method, step)

    def features(self, x: Tensor) -> Tensor:
        """The block's input: stem output with augmentation."""
        return self.augment(self.stem(x))

    def classify(self, x: Tensor, regularize: bool = False) -> ClassifierOutput:
        h = self.features(x)
        if self.second_order:
            (h, _), energy = self.block((h, torch.zeros_like(h)), regularize=regularize)
        else:
            h, energy = self.block(h, regularize=regularize)
        return ClassifierOutput(self.head(h), energy, self.block.last_stats)

    def forward(self, x: Tensor) -> Tensor:
        return self.classify(x).logits

    def flow(self, x: Tensor, times: Sequence[float]) -> Tensor:
        """Block states at ``times`` (for pictures of the flow of points): [len(times), batch, ...]."""
        from ..solve import solve  # local: only plotting needs it

        h = self.features(x)
        state = (h, torch.zeros_like(h)) if self.second_order else h
        t = torch.tensor(list(times), dtype=torch.float64)
        field = self.block.field
        if isinstance(self.block, EulerStack):
            step = FixedStep(h=self.block.T / self.block.steps)
            sol = solve(field, state, t, method="euler", step=step)
        else:
            sol = solve(field, state, t, method=self.block.method, step=self.block.step)
        return sol.ys[0] if self.second_order else sol.ys


def _block(
    kind: str,
    field: nn.Module,
    T: float,
    method: str,
    step: Optional[StepControl],
    adjoint: bool,
    kinetic: float,
    resnet_steps: int,
) -> Union[ODEBlock, EulerStack]:
    if kind == "resnet":
        return EulerStack(field, resnet_steps, T, kinetic=kinetic)
    return ODEBlock(field, T=T, method=method, step=step, adjoint=adjoint, kinetic=kinetic)


def conv_classifier(
    kind: str,
    in_channels: int,
    num_classes: int,
    channels: int = 32,
    downsample: int = 1,
    augment: int = 8,
    T: float = 1.0,
    method: str = "rk4",
    step: Optional[StepControl] = None,
    adjoint: bool = False,
    kinetic: float = 0.0,
    resnet_steps: int = 4,
) -> ODEClassifier:
    """Image classifier for [batch, in_channels, H, W] (digits: downsample=1; MNIST/CIFAR: 2).

    ``resnet_steps`` residual blocks for the ResNet twin; ``augment`` extra zero channels for
    anode (ignored otherwise). ``step`` defaults to FixedStep(steps=resnet_steps).
    """
    check_kind(kind)
    if downsample < 0:
        raise ValueError(f"downsample must be >= 0; got {downsample}")
    layers: List[nn.Module] = [nn.Conv2d(in_channels, channels, 3, padding=1)]
    for _ in range(downsample):
        layers += [group_norm(channels), nn.ReLU(), nn.Conv2d(channels, channels, 4, stride=2, padding=1)]
    stem = nn.Sequential(*layers)
    extra = augment if kind == "anode" else 0
    width = channels + extra
    field: nn.Module = SecondOrder(ConvField(2 * width, width)) if kind == "sonode" else ConvField(width)
    step = FixedStep(steps=resnet_steps) if step is None else step
    head = nn.Sequential(
        group_norm(width), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes)
    )
    block = _block(kind, field, T, method, step, adjoint, kinetic, resnet_steps)
    return ODEClassifier(kind, stem, Augment(extra), block, head, num_classes, second_order=kind == "sonode")


def mlp_classifier(
    kind: str,
    dim: int,
    num_classes: int,
    hidden: Sequence[int] = (32, 32),
    width: Optional[int] = None,
    augment: int = 1,
    activation: str = "relu",
    T: float = 1.0,
    method: str = "rk4",
    step: Optional[StepControl] = None,
    adjoint: bool = False,
    kinetic: float = 0.0,
    resnet_steps: int = 10,
) -> ODEClassifier:
    """Vector classifier for [batch, dim]. With ``width`` None the block acts on the input
    space itself (needed to show the homeomorphism limit on the annuli); ``augment`` extra
    zero dims for anode."""
    check_kind(kind)
    stem: nn.Module = nn.Identity() if width is None else nn.Linear(dim, width)
    base = dim if width is None else width
    extra = augment if kind == "anode" else 0
    d = base + extra
    field: nn.Module = (
        SecondOrder(MLPField(2 * d, d, hidden, activation)) if kind == "sonode" else MLPField(d, d, hidden, activation)
    )
    step = FixedStep(steps=resnet_steps) if step is None else step
    block = _block(kind, field, T, method, step, adjoint, kinetic, resnet_steps)
    return ODEClassifier(
        kind, stem, Augment(extra), block, nn.Linear(d, num_classes), num_classes, second_order=kind == "sonode"
    )


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = [
    "KINDS",
    "ClassifierOutput",
    "Augment",
    "ODEClassifier",
    "conv_classifier",
    "mlp_classifier",
    "count_parameters",
    "Adaptive",
    "FixedStep",
]
