"""An exponential moving average (EMA) of a model's parameters, for evaluation and sampling.

After each optimizer step n = 1, 2, ... the average moves toward the parameters theta_n:

    bar_theta_n = beta_n bar_theta_{n-1} + (1 - beta_n) theta_n,
    beta_n = min(decay, (1 + n) / (w + n))      (warmup, offset w > 1; bar_theta_0 = theta_0),

an exponential form of Polyak & Juditsky's (1992) averaging, as TensorFlow's ExponentialMovingAverage
with `num_updates` (w = 10): early on the average spans about the last n / (w - 1) steps, later the
last 1 / (1 - decay); the cap is reached at n = (w decay - 1) / (1 - decay). Early, (1 - 1/n)^(w - 1)
~ beta_n: Karras et al. 2024's power-function EMA with exponent w - 2 (relative width ~ 1/w), so a
larger w lags less while the loss still falls fast. Flow-matching and diffusion models are evaluated and sampled with such averages
(e.g. Song et al. 2021's score-based models, decay 0.999-0.9999): the regression's
gradient is noisy (random times and noise pairs), and the average is a better field than the last
iterate. Only floating-point parameters are averaged; buffers stay the model's own.
"""

from __future__ import annotations

import contextlib
from typing import Any, Dict, Iterable, Iterator, List, Optional

import torch
from torch import Tensor, nn

from .context import RunContext
from .task import AuxiliaryStep, StepOutput


def check_warmup_offset(offset: float) -> float:
    """The warmup offset w of beta_n = (1 + n) / (w + n) as a float > 1; a ValueError otherwise."""
    if isinstance(offset, bool) or not isinstance(offset, (int, float)) or not float(offset) > 1.0:
        raise ValueError(
            f"EMA warmup offset must be a number > 1 (10 is TensorFlow's; larger lags less); got {offset!r}"
        )
    return float(offset)


def check_decay(decay: float) -> float:
    """The decay as a float in [0, 1); a ValueError naming the fix otherwise."""
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0.0 <= float(decay) < 1.0:
        raise ValueError(f"EMA decay must be a number in [0, 1) (e.g. 0.999; 0 turns the average off); got {decay!r}")
    return float(decay)


class EMA:
    """The moving average of ``model``'s floating-point parameters (see the module docstring).

    ``update()`` after every optimizer step; ``with ema.applied(): ...`` evaluates (or samples,
    or saves) the model with the averaged weights and restores the trained ones afterwards;
    ``state_dict``/``load_state_dict`` hold the average and the update count (resumable).
    ``only``: average just these parameters of the model (e.g. not a learned end time);
    ``warmup_offset``: w of the warmup (ignored without warmup).
    """

    def __init__(
        self,
        model: nn.Module,
        decay: float,
        warmup: bool = True,
        only: Optional[Iterable[Tensor]] = None,
        warmup_offset: float = 10.0,
    ) -> None:
        self.decay = check_decay(decay)
        self.warmup = bool(warmup)
        self.offset = check_warmup_offset(warmup_offset)
        keep = None if only is None else {id(p) for p in only}  # e.g. the theta optimizer's parameters
        named = [(n, p) for n, p in model.named_parameters() if p.is_floating_point()]
        named = [(n, p) for n, p in named if keep is None or id(p) in keep]
        self.names: List[str] = [n for n, _ in named]
        self.params: List[Tensor] = [p for _, p in named]
        self.shadow: List[Tensor] = [p.detach().clone() for p in self.params]
        self.updates = 0

    def rate(self, n: int) -> float:
        """beta_n of update n (1-based)."""
        return min(self.decay, (1.0 + n) / (self.offset + n)) if self.warmup else self.decay

    @torch.no_grad()
    def reset(self) -> None:
        """Start over from the model's current weights (bar_theta_0 = theta, no updates yet)."""
        for s, p in zip(self.shadow, self.params):
            s.copy_(p.detach())
        self.updates = 0

    @torch.no_grad()
    def update(self) -> None:
        """bar_theta <- beta_n bar_theta + (1 - beta_n) theta, n = the number of updates so far + 1."""
        self.updates += 1
        weight = 1.0 - self.rate(self.updates)
        if self.shadow:  # under no_grad the parameters are read as they are (no detach per tensor)
            torch._foreach_lerp_(self.shadow, self.params, weight)

    def averaged_state(self) -> Dict[str, Tensor]:
        """{parameter name: its average} (the names of ``model.named_parameters()``)."""
        return dict(zip(self.names, self.shadow))

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Within the block the model holds the averaged weights; the trained ones come back after."""
        saved = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for p, s in zip(self.params, self.shadow):
                p.copy_(s)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, s in zip(self.params, saved):
                    p.copy_(s)

    def state_dict(self) -> Dict[str, Any]:
        return dict(
            decay=self.decay,
            warmup=self.warmup,
            warmup_offset=self.offset,
            updates=self.updates,
            shadow=self.averaged_state(),
        )

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        shadow = state["shadow"]
        missing = sorted(set(self.names) - set(shadow))
        if missing:
            raise ValueError(f"the EMA state has no average for parameters {missing[:5]}; it belongs to another model")
        with torch.no_grad():
            for s, name in zip(self.shadow, self.names):
                s.copy_(shadow[name])
        self.updates = int(state["updates"])


class EMAStep(AuxiliaryStep):
    """The Trainer's hook: update after every theta step; validation, the final evaluation and
    the figures run on the averaged weights (`evaluation`); checkpoints keep the trained weights
    in ``model`` (exact resume) and the average under ``auxiliary['ema']`` (`averaged_weights`)."""

    def __init__(self, ema: EMA) -> None:
        self.ema = ema

    def step(self, out: StepOutput, ctx: RunContext) -> Dict[str, float]:
        self.ema.update()
        return {}

    def evaluation(self) -> contextlib.AbstractContextManager:
        return self.ema.applied()

    def state_dict(self) -> Dict[str, Any]:
        return self.ema.state_dict()

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """The saved average; none saved (a run resumed from a checkpoint written without an EMA):
        the average starts from the loaded weights."""
        if state:
            self.ema.load_state_dict(state)
        else:
            self.ema.reset()


def ema_steps(
    model: nn.Module, decay: float, params: Iterable[Tensor], warmup_offset: float = 10.0
) -> Dict[str, AuxiliaryStep]:
    """{'ema': EMAStep} for decay > 0 (averaging ``params`` of ``model``), else {}."""
    decay = check_decay(decay)
    return {"ema": EMAStep(EMA(model, decay, only=params, warmup_offset=warmup_offset))} if decay > 0 else {}


def averaged_weights(state: Dict[str, Any]) -> Dict[str, Tensor]:
    """A checkpoint's weights for evaluation and sampling: its ``model`` entry with the EMA
    averages in place of the trained parameters where the run kept an EMA."""
    weights = dict(state["model"])
    ema = (state.get("auxiliary") or {}).get("ema")
    if ema:
        unknown = sorted(set(ema["shadow"]) - set(weights))
        if unknown:
            raise ValueError(f"the checkpoint's EMA names parameters {unknown[:5]} that its model does not have")
        weights.update(ema["shadow"])
    return weights
