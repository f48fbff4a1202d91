"""Task `cnf`: a CNF on a toy 2-D density (FFJORD; seed 000 §4.2.1) with the speed-ups of
seeds 001 (RNODE), 004 (TO-FLOW) and 000 §4.2.5 (multilevel), alone or together.

Each iteration: a fresh batch drawn from the toy generator; theta step on mean NLL (Hutchinson
or exact trace) + RNODE terms; with `learn_T` the TO-FLOW step on T; a multilevel `schedule`
switches solver and learning rate. With objective 'flow-matching' the step regresses the field
on a path between data and noise instead (`flows.FlowMatching`, no solve), optionally followed
by `finetune_likelihood` likelihood (+ RNODE) iterations. Validation: NLL with the exact trace and the validation
solver (default: the training one; dopri5 1e-5 after flow matching). At the end the flow is
evaluated on `test_max` rows with the training solver and with dopri5 1e-5 (re-discretization),
the exact trace or Hutchinson's with `eval_probes` probes and a standard error, each NLL with
the solver it came from, together with its inverse error mean ||f^-1(f(x)) - x||_2.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Optional

import torch
from torch import Tensor, nn

from ..data.toy2d import sample_toy
from ..flows import CNF, FlowMatching
from ..flows.cnf import standard_normal_logprob
from ..flows.evaluation import evaluate_density
from ..nn import ODENet, ReversedTime
from ..solvers.compile_policy import compile_choice
from ..solvers.stepping import Adaptive
from ..training import RunContext, StepOutput, Task
from ..training.data import generated_shard
from ..training.ema import ema_steps
from ..training.schedule import Stage, parse_schedule
from .cnf2d_config import CNFConfig
from .cnf_memory import note, peak_memory_mb, plan_memory
from .end_time_step import end_time_steps
from .objective_config import FM_EMA_WARMUP, ms_per_iteration_by_kind
from .run import train

log = logging.getLogger(__name__)


def build_flow(cfg: CNFConfig) -> CNF:
    torch.manual_seed(cfg.seed)
    control_times = [cfg.T * k / (cfg.controls - 1) for k in range(cfg.controls)] if cfg.controls > 1 else None
    net = ODENet(
        2, cfg.hidden, layer=cfg.layer, activation=cfg.activation, zero_init=cfg.zero_init, control_times=control_times
    )
    field: nn.Module = ReversedTime(net, cfg.T) if cfg.net_time == "reversed" else net
    return CNF(
        field,
        2,
        T=cfg.T,
        train_T=cfg.learn_T,
        divergence=cfg.divergence,
        method=cfg.method,
        step=cfg.step(),
        adjoint=cfg.mode == "opt-disc",
        seminorm=cfg.seminorm,
        kinetic=cfg.kinetic,
        jacobian=cfg.jacobian,
        compile=cnf_compile(cfg.compile),
    )


def cnf_compile(choice) -> bool:
    """compile 'auto' builds an eager CNF: CNF(compile=True) swaps in the torch.func divergence and
    its C++ build took more than 9 minutes for the FFJORD-size net (benchmarks/RESULTS.md), more
    than a toy run can repay; 'on' compiles as asked."""
    value = compile_choice(choice)
    if value == "auto":
        log.debug("odeflow auto-compile: CNF solved eagerly (its compile does not pay in a toy run)")
        return False
    return value


@contextmanager
def using_solver(flow: CNF, method: str, step):
    """Evaluate with another solver and the exact trace; the flow's own settings come back."""
    saved = (flow.method, flow.step, flow.divergence)
    flow.set_solver(method, step)
    flow.divergence = "exact"
    try:
        with torch.no_grad():
            yield flow
    finally:
        flow.method, flow.step, flow.divergence = saved


def nll_per_sample(flow: CNF, x: Tensor, method: str, step) -> Tensor:
    """-log p(x) per sample with the exact trace and the given solver."""
    with using_solver(flow, method, step):
        z, logdet = flow.transform(x)
    return -(standard_normal_logprob(z) - logdet)


def evaluate_flow(flow: CNF, x: Tensor, method: str, step) -> Dict[str, float]:
    """Test NLL (exact trace), inverse error and NFE with the given solver."""
    with using_solver(flow, method, step):
        z, logdet = flow.transform(x)
        nfe = flow.last_stats.nfe
        nll = float(-(standard_normal_logprob(z) - logdet).mean())
        inv = float((flow.inverse(z) - x).norm(dim=1).mean())
    return dict(nll=nll, inverse_error=inv, nfe=nfe)


class CNF2DTask(Task):
    name = "cnf"
    monitor = "val_nll"

    config: CNFConfig

    def run_label(self) -> str:
        return f"cnf {self.config.mode}"

    def setup(self, ctx: RunContext) -> None:
        cfg = self.config
        self.flow = build_flow(cfg).to(ctx.device)
        self.model = self.flow
        self.x_val = sample_toy(cfg.data, cfg.val_size, seed=10_000 + cfg.seed).to(ctx.device)
        self.shard = (cfg.batch, ctx.dist.shard(cfg.batch)) if ctx.dist.active else None
        self.fm = FlowMatching(self.flow, cfg.path, cfg.coupling, cfg.sigma_min)
        self.iteration = 0
        self.memory: Optional[Dict[str, Any]] = None
        if not self.flow.compile:  # a compiled solve keeps its own graph: not planned here
            stages = [(st.method, st.step()) for st in parse_schedule(cfg.schedule)] if cfg.schedule else []
            probe = sample_toy(cfg.data, 64, seed=30_000 + cfg.seed).to(ctx.device)
            self.memory = plan_memory(
                self.flow,
                probe,
                cfg.batch // ctx.dist.world_size,
                ctx,
                cfg.max_memory,
                cfg.memory_plan,
                [(cfg.method, cfg.step())] + stages,
            )

    def auxiliary_steps(self, ctx: RunContext):
        steps = end_time_steps(self.flow, self.config, ctx)  # TO-FLOW's T first: the EMA averages theta only
        steps.update(ema_steps(self.model, self.config.ema_decay(), self.parameters(), FM_EMA_WARMUP))
        return steps

    def enter_stage(self, stage: Stage) -> None:
        self.flow.set_solver(stage.method, stage.step())

    def batch(self, iteration: int, ctx: RunContext) -> Tensor:
        self.iteration = iteration
        draw = lambda n, seed: sample_toy(self.config.data, n, seed=seed)  # noqa: E731
        return generated_shard(draw, self.config.batch, self.config.seed, iteration, ctx.dist).to(ctx.device)

    def training_loss(self, x: Tensor) -> StepOutput:
        flow, cfg = self.flow, self.config
        if cfg.flow_matching_at(self.iteration, cfg.iterations):
            loss, parts = self.fm.loss(x)
            nan = float("nan")  # a plain number: no tensor made per step
            fm_metrics: Dict[str, Any] = dict(
                loss=loss.detach(), nll=nan, fm_loss=parts["fm_loss"], T=flow.T.detach(), nfe_forward=1
            )
            return StepOutput(loss, fm_metrics, dict(z_T=None))
        flow.noise_shard = self.shard
        try:
            loss, parts = flow.loss(x)
        finally:
            flow.noise_shard = None
        stats = flow.last_stats
        metrics: Dict[str, Any] = dict(
            loss=loss.detach(),
            nll=parts["nll"],
            kinetic=parts.get("kinetic", 0.0),
            jacobian=parts.get("jacobian", 0.0),
            T=flow.T.detach(),
            nfe_forward=stats.nfe,
            nfe_backward=lambda: stats.nfe_backward,
        )
        if cfg.objective == "flow-matching":
            metrics["fm_loss"] = float("nan")
        return StepOutput(loss, metrics, dict(z_T=parts["z_T"]))

    def compiles(self) -> bool:
        """compile 'on' (the CNF's solves run compiled; 'auto' solves a CNF eagerly)."""
        return cnf_compile(self.config.compile)

    def cuda_graph_problem(self) -> Optional[str]:
        cfg = self.config
        stages = parse_schedule(cfg.schedule) if cfg.schedule else []
        if cfg.mode != "disc-opt":
            return "the adjoint (opt-disc) chooses its backward steps on the host; use --mode disc-opt"
        if isinstance(cfg.step(), Adaptive) or any(s.step_size is None and s.steps is None for s in stages):
            return "adaptive steps are accepted or rejected on the host; use a fixed step (--step-size or --steps)"
        if cfg.learn_T:
            return "a learnable end time (--learn-T) is read on the host every step"
        if cnf_compile(cfg.compile):
            return "compile and CUDA graphs are alternatives; drop one"
        memory = getattr(self, "memory", None)
        if memory is not None and memory["strategy"] == "adjoint":
            return (
                "the memory plan chose the adjoint (the plain and checkpointed steps do not fit); raise "
                "--max-memory or lower --batch"
            )
        return None

    def validate(self, ctx: RunContext) -> Dict[str, float]:
        x = self.x_val[ctx.dist.rank :: ctx.dist.world_size]
        return dict(val_nll=ctx.dist.sample_mean(nll_per_sample(self.flow, x, *self.config.val_solver(self.flow))))

    def finish(self, ctx: RunContext) -> Dict[str, Any]:
        cfg, flow = self.config, self.flow
        x_test = sample_toy(cfg.data, cfg.test_max or cfg.val_size, seed=20_000 + cfg.seed).to(ctx.device)
        announce = lambda line: note(ctx, line)  # noqa: E731
        kw = dict(divergence=cfg.eval_divergence, probes=cfg.eval_probes, announce=announce)
        trained = evaluate_density(flow, x_test, flow.method, flow.step, **kw)  # type: ignore[arg-type]
        fine = evaluate_density(flow, x_test, "dopri5", Adaptive(1e-5, 1e-5), **kw)  # type: ignore[arg-type]
        summary = dict(
            T=float(flow.T.detach()),
            objective=cfg.objective,
            test_rows=int(x_test.shape[0]),
            test_nll=trained["nll"],
            test_nll_se=trained["nll_se"],
            test_nll_solver=trained["solver"],
            test_inverse_error=trained["inverse_error"],
            test_nfe=trained["nfe"],
            test_nll_dopri5=fine["nll"],
            test_nll_dopri5_se=fine["nll_se"],
            test_nll_dopri5_solver=fine["solver"],
            test_inverse_error_dopri5=fine["inverse_error"],
            test_nfe_dopri5=fine["nfe"],
            eval_divergence=cfg.eval_divergence,
            eval_probes=cfg.eval_probes,
            trained_solver=trained,
            rediscretized_dopri5=fine,
            memory=self.memory,
        )
        if ctx.folder is not None:
            from .cnf2d_figures import plot_density_and_samples, plot_forward_inverse

            plot_density_and_samples(flow, cfg.data, ctx.folder.path)
            plot_forward_inverse(
                flow,
                x_test[:2000],
                ctx.folder.file("forward_inverse.png"),
                title=f"{cfg.mode} {flow.method}: x, f(x), f^-1(f(x))",
            )
        if cfg.objective == "flow-matching":
            summary.update(ms_per_iteration_by_kind(ctx.history, cfg, cfg.iterations))
        summary["ema"] = self.config.ema_decay()  # the EMA decay the evaluations used (0: the trained weights)
        summary.update(lr=self.config.lr, net_time=self.config.net_time)  # what the run used (flow-matching defaults)
        summary["peak_memory_mb"] = peak_memory_mb(ctx.device)
        return summary


def train_cnf(
    cfg: CNFConfig, out: Optional[Path], progress: bool = True, resume: bool = False, tensorboard: bool = False
) -> Dict[str, Any]:
    """Train (or, with ``resume``, continue) and return summary.json's content."""
    return train("cnf", cfg, out, progress, resume, tensorboard)


def load_flow(path: Path):
    """(flow in eval mode with the exact trace, its training config) from best.pt or last.pt."""
    from ..training.checkpoint import model_from_checkpoint

    flow, cfg = model_from_checkpoint(path, "cnf", CNFConfig, build_flow)
    flow.divergence = "exact"
    return flow, cfg
