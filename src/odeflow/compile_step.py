"""A training step with every part compiled: ``odeflow.compile_step(loss_fn, optimizer)``.

    step = odeflow.compile_step(lambda: loss_of(odeflow.solve(f, y0, t, ..., compile=True)), opt)
    for _ in range(iterations):
        loss = step()

Each call zeroes the gradients, evaluates ``loss_fn`` (whose solves, with ``compile=True``, run
as one compiled program each: a fixed grid as one scan, an adaptive adjoint solve as one
while_loop, see `odeflow.solvers.tensor_loop`), runs the backward pass (the compiled solves'
compiled backward, or the adjoint's one compiled backward solve) and then the optimizer's update
as one compiled, fused program (`torch.compile` of ``optimizer.step``, PyTorch's recipe for
compiled optimizers). What stays eager is the loss arithmetic between them.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor


def compile_step(loss_fn: Callable[..., Tensor], optimizer: torch.optim.Optimizer) -> Callable[..., Tensor]:
    """``step(*args, **kwargs) -> loss`` (detached): zero_grad, loss_fn(*args, **kwargs), backward,
    and the optimizer update compiled into one program.

    A learning rate changed between steps (a scheduler) should be a tensor in the optimizer's
    param_groups (``torch.optim.Adam(params, lr=torch.tensor(1e-3))``), otherwise every new value
    compiles the update again.
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"compile_step needs a torch.optim.Optimizer; got {type(optimizer).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"compile_step needs a callable loss_fn; got {type(loss_fn).__name__}")
    update = torch.compile(optimizer.step)

    def step(*args: Any, **kwargs: Any) -> Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(*args, **kwargs)
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            raise ValueError(
                f"loss_fn must return a scalar tensor; got {type(loss).__name__}"
                + (f" of shape {tuple(loss.shape)}" if isinstance(loss, Tensor) else "")
            )
        loss.backward()
        update()
        return loss.detach()

    return step
