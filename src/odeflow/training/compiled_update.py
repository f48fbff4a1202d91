"""The optimizer update as one compiled program (PyTorch's compiled-optimizer recipe).

The Trainer uses it when the task's solves are compiled (`Task.compiles`). The first update
runs eagerly (it creates the optimizer's state); then every ``lr`` becomes a 0-d tensor (so
that a scheduler or a multilevel stage changes a value in place instead of compiling the update
again) and Adam's step counters of float64 parameters become float64 (so the compiled update
computes the bias correction as the eager one does: to rounding in float64), and the update is
``torch.compile(optimizer.step)``. Where compiling is impossible (no C++ compiler, CUDA graphs
on, or the compile fails) the eager update stays, with the reason logged (logger
``odeflow.training.compiled_update``, level INFO). When it compiles, glibc's malloc is also told
to keep freed memory (`odeflow.malloc`; ``$ODEFLOW_KEEP_FREED_MEMORY=0`` turns that off): the
compiled CNF step ran 1.7x faster with it (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Optional

import torch
from torch import Tensor

from ..malloc import keep_freed_memory_for_training

log = logging.getLogger(__name__)


def compile_problem(cuda_graph: bool) -> Optional[str]:
    """Why the update cannot be compiled here (None: it can)."""
    from ..solvers.compile_policy import has_cxx_compiler

    if cuda_graph:
        return "CUDA graphs are on (the captured step holds the update)"
    if not has_cxx_compiler():
        return "no C++ compiler"
    return None


def tensor_lr(opt: torch.optim.Optimizer) -> None:
    """Every param group's lr as a 0-d tensor (float64 unless a parameter is on a device
    without float64), on the device of the group's first parameter."""
    for group in opt.param_groups:
        lr = group["lr"]
        if isinstance(lr, Tensor):
            continue
        device = group["params"][0].device if group["params"] else torch.device("cpu")
        dtype = torch.float32 if device.type == "mps" else torch.float64
        group["lr"] = torch.tensor(float(lr), dtype=dtype, device=device)


def _wide_step_counters(opt: torch.optim.Optimizer) -> None:
    """Step counters (Adam, AdamW) of float64 parameters as float64 tensors."""
    for p, state in opt.state.items():
        step = state.get("step") if isinstance(state, dict) else None
        if isinstance(step, Tensor) and isinstance(p, Tensor) and p.dtype == torch.float64:
            state["step"] = step.to(torch.float64)


class CompiledUpdate:
    """``update()`` runs ``opt.step()``: eagerly for the first update, compiled afterwards (or
    eagerly throughout when `compile_problem` names a reason or the first compile fails)."""

    def __init__(self, opt: torch.optim.Optimizer, cuda_graph: bool = False) -> None:
        self.opt = opt
        self.reason = compile_problem(cuda_graph)
        if self.reason is not None:
            log.info("odeflow: the optimizer update stays eager (%s)", self.reason)
        else:
            keep_freed_memory_for_training()
        self._compiled: Optional[Callable[[], Any]] = None
        self._proven = False  # a compiled update has run

    @property
    def active(self) -> bool:
        """The update runs compiled (from the second update on)."""
        return self._compiled is not None

    def __call__(self) -> None:
        if self._compiled is None:
            self.opt.step()
            if self.reason is None:  # the state exists now: compile from the next update on
                for group in self.opt.param_groups:  # the compiled update is the single-tensor
                    group["fused"] = False  # algorithm (the state is the same for both)
                tensor_lr(self.opt)
                _wide_step_counters(self.opt)
                self._compiled = torch.compile(self.opt.step)
            return
        if self._proven:
            self._compiled()
            return
        try:  # the first compiled call compiles: a failure there changed nothing yet
            self._compiled()
        except torch._dynamo.exc.TorchDynamoException as e:
            self.reason = f"compiling it failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
            log.info("odeflow: the optimizer update stays eager (%s)", self.reason)
            self._compiled = None
            self.opt.step()
        self._proven = True
