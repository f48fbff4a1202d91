"""A whole training step captured in one CUDA graph and replayed (torch.cuda.graph).

At small and medium sizes a neural-ODE training step is thousands of tiny kernels, and the
launches, not the arithmetic, set the time. A fixed-step Disc-Opt step has no host syncs and
no host-to-device copies (`odeflow.solve` caches its grid and skips its finiteness checks
under capture), so forward, backward and optimizer step can be captured once and replayed as
one launch. Adaptive steps and the adjoint choose step sizes on the host and cannot be captured.
"""

from __future__ import annotations

from typing import Any, Callable, List, Sequence, Tuple

import torch
from torch import Tensor


class GraphedStep:
    """``step(*inputs) -> loss`` (forward, ``loss.backward()``, ``optimizer.step()``) captured once.

    Calling the object copies the new inputs into the captured ones, replays the graph and
    returns the captured loss tensor (overwritten by the next call: ``.item()`` or clone it).
    Capturing needs warm-up steps on a side stream; they are undone afterwards (parameters and
    optimizer state restored), so the first call performs the true first update. Use an
    optimizer created with ``capturable=True`` (Adam, AdamW) and keep the shapes fixed.
    """

    def __init__(
        self,
        step: Callable[..., Tensor],
        example_inputs: Sequence[Tensor],
        optimizer: torch.optim.Optimizer,
        warmup: int = 3,
    ) -> None:
        if not torch.cuda.is_available():
            raise RuntimeError("GraphedStep needs a CUDA device; none is available (run the plain step instead)")
        params = [p for g in optimizer.param_groups for p in g["params"]]
        bad = [tuple(x.shape) for x in list(example_inputs) + params if not x.is_cuda]
        if bad:
            raise ValueError(
                f"GraphedStep needs every input and parameter on a CUDA device; {len(bad)} are not "
                f"(shapes {bad[:3]}): move the model and data with .to('cuda')"
            )
        for group in optimizer.param_groups:
            if group.get("capturable") is False:
                raise ValueError(
                    f"{type(optimizer).__name__} must be created with capturable=True to be captured in a CUDA graph"
                )
        self.inputs: List[Tensor] = [x.detach().clone() for x in example_inputs]
        saved = _snapshot(params, optimizer)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                optimizer.zero_grad(set_to_none=True)
                step(*self.inputs)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        optimizer.zero_grad(set_to_none=True)
        with torch.cuda.graph(self.graph):
            self.loss = step(*self.inputs)
        _restore(saved, params, optimizer)

    def __call__(self, *inputs: Tensor) -> Tensor:
        if len(inputs) != len(self.inputs):
            raise ValueError(f"GraphedStep was captured with {len(self.inputs)} inputs; got {len(inputs)}")
        for static, x in zip(self.inputs, inputs):
            if x.shape != static.shape:
                raise ValueError(
                    f"GraphedStep input shape {tuple(x.shape)} differs from the captured "
                    f"{tuple(static.shape)}; capture a new step for a new shape"
                )
            static.copy_(x, non_blocking=True)
        self.graph.replay()
        return self.loss


class CapturedTrainingStep:
    """The Trainer's step as a `GraphedStep`: the task's loss, backward, gradient-norm clipping
    (norm returned, so the Trainer can check it) and the optimizer step. The batch is a tensor or
    a tuple/list of tensors of fixed shape; the returned StepOutput and norm are the captured
    tensors, refreshed by every call."""

    def __init__(
        self,
        forward: Callable[[Any], Any],
        params: Sequence[Tensor],
        optimizer: torch.optim.Optimizer,
        batch: Any,
        clip: float,
    ) -> None:
        tensors, self._rebuild = _flatten(batch)
        captured: dict = {}

        def step(*xs: Tensor) -> Tensor:
            out = forward(self._rebuild(xs))
            out.loss.backward()
            captured["norm"] = torch.nn.utils.clip_grad_norm_(params, clip)
            optimizer.step()
            captured["out"] = out
            return out.loss

        self.graph = GraphedStep(step, tensors, optimizer)
        self.out, self.norm = captured["out"], captured["norm"]  # from the capture (the last call)

    def __call__(self, batch: Any) -> Tuple[Any, Tensor]:
        self.graph(*_flatten(batch)[0])
        return self.out, self.norm


def _flatten(batch: Any) -> Tuple[List[Tensor], Callable[[Sequence[Tensor]], Any]]:
    if isinstance(batch, Tensor):
        return [batch], lambda xs: xs[0]
    if isinstance(batch, (tuple, list)) and all(isinstance(x, Tensor) for x in batch):
        return list(batch), lambda xs: type(batch)(xs)
    raise ValueError(f"a CUDA-graph step needs a batch of tensors; got {type(batch).__name__}")


def _snapshot(params: List[Tensor], optimizer: torch.optim.Optimizer) -> dict:
    with torch.no_grad():
        state = {
            (id(p), k): v.clone()
            for p in params
            for k, v in optimizer.state.get(p, {}).items()
            if isinstance(v, Tensor)
        }
        return dict(params=[p.detach().clone() for p in params], state=state)


def _restore(saved: dict, params: List[Tensor], optimizer: torch.optim.Optimizer) -> None:
    """Undo the warm-up in place (the graph holds these addresses): parameters back, optimizer
    state back, state created by the warm-up zeroed (a fresh Adam/SGD state: step 0, moments 0)."""
    with torch.no_grad():
        for p, p0 in zip(params, saved["params"]):
            p.copy_(p0)
        for p in params:
            for k, v in optimizer.state.get(p, {}).items():
                if isinstance(v, Tensor):
                    old = saved["state"].get((id(p), k))
                    if old is None:
                        v.zero_()
                    else:
                        v.copy_(old)
        optimizer.zero_grad(set_to_none=False)
