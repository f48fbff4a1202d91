"""TO-FLOW's end-time update (seed 004) as an auxiliary step of the Trainer, for any CNF task."""

from __future__ import annotations

from typing import Any, Dict

from ..flows import EndTimeOptimizer
from ..training import AuxiliaryStep, RunContext, StepOutput


class EndTimeStep(AuxiliaryStep):
    """After the theta step: T <- clip(Adam(dL/dT + alpha sign T)), dL/dT averaged over ranks.

    Needs ``out.extra['z_T']`` (the end state of the loss's solve); logs the new T."""

    def __init__(self, optimizer: EndTimeOptimizer) -> None:
        self.optimizer = optimizer

    def step(self, out: StepOutput, ctx: RunContext) -> Dict[str, float]:
        self.optimizer.step(out.extra["z_T"])
        return {"T": float(self.optimizer.flow.T.detach())}

    def state_dict(self) -> Dict[str, Any]:
        return {"adam": self.optimizer.opt.state_dict()}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.optimizer.opt.load_state_dict(state["adam"])


def end_time_steps(flow, cfg, ctx: RunContext) -> Dict[str, AuxiliaryStep]:
    """{'T': EndTimeStep} when the config learns T (fields learn_T, T_lr, T_alpha, T_eps, T_objective)."""
    if not cfg.learn_T:
        return {}
    return {
        "T": EndTimeStep(
            EndTimeOptimizer(
                flow,
                cfg.T_lr,
                cfg.T_alpha,
                cfg.T_eps,
                objective=cfg.T_objective,
                reduce=ctx.dist.mean if ctx.dist.active else None,
            )
        )
    }
