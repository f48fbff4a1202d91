"""Task `image`: multiscale image CNFs (FFJORD, RNODE seed 001 §6, TO-FLOW seed 004) on digits,
MNIST, Fashion-MNIST or CIFAR-10.

Each iteration: a batch of training images (shuffled epochs), dequantized with fresh uniform
noise; theta step on bits/dim + RNODE terms (Gaussian Hutchinson trace, one noise draw per
solve); with `learn_T` every block's end time takes a TO-FLOW step with the gradient the same
backward pass left in it. Validation: bits/dim of the first `val_size` validation images
(fixed dequantization noise, Hutchinson, the validation solver: dopri5 1e-5 by default as in
RNODE's evaluation) and a PNG grid of samples. At the end: train/val/test bits/dim and a final
sample grid.

With objective 'flow-matching' each step regresses the single-scale image CNF's field on a path
between the logit of the images and noise instead (`flows.FlowMatching`: one net evaluation, no
solve), optionally followed by `finetune_likelihood` likelihood iterations. The test bits/dim
(either objective) come from `flows.evaluation.evaluate_density` with `eval_divergence` /
`eval_probes`, on the first `test_max` test images, with the solver, standard error, NFE and
inverse error beside them.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import torch
from torch import Tensor

from ..data.images import image_shape, load_images
from ..flows.evaluation import describe_solver, evaluate_density, image_bits_per_dim
from ..flows.flow_matching import FlowMatching
from ..flows.image_transforms import dequantize
from ..flows.multiscale import ImageEndTimes, MultiscaleCNF
from ..training import AuxiliaryStep, RunContext, StepOutput, Task
from ..training.data import EpochBatches, iteration_seed
from ..training.ema import ema_steps
from ..training.schedule import Stage, parse_schedule
from .cnf_memory import PROBE_ROWS, note, peak_memory_mb, plan_memory
from .image_config import ImageConfig
from .objective_config import FM_EMA_WARMUP, ms_per_iteration_by_kind
from .run import train


def default_image_config_file(data: str) -> Optional[Path]:
    """configs/image_<data>.toml in the working directory, else in the source checkout (None if
    neither): the settings `odeflow train image --data <data>` uses without --config."""
    from .tabular import default_config_file

    return default_config_file(f"image_{data}")


def build_image_flow(cfg: ImageConfig) -> MultiscaleCNF:
    torch.manual_seed(cfg.seed)
    return MultiscaleCNF(
        image_shape(cfg.data),
        scales=cfg.scale_count(),
        blocks=cfg.blocks,
        hidden=cfg.hidden,
        activation=cfg.activation,
        pieces=cfg.pieces,
        T=cfg.T,
        train_T=cfg.learn_T,
        alpha=cfg.alpha,
        method=cfg.method,
        step=cfg.step(),
        adjoint=cfg.mode == "opt-disc",
        kinetic=cfg.kinetic,
        jacobian=cfg.jacobian,
        zero_init=cfg.zero_init,
        net_time=cfg.net_time,
    )


@contextmanager
def using_solver(flow: MultiscaleCNF, method: str, step) -> Iterator[MultiscaleCNF]:
    """Evaluate with another solver (no gradients); each block's own solver comes back."""
    saved = [(b.method, b.step) for b in flow.cnfs]
    flow.set_solver(method, step)
    try:
        with torch.no_grad():
            yield flow
    finally:
        for b, (m, s) in zip(flow.cnfs, saved):
            b.set_solver(m, s)


def bits_per_dim_of(
    flow: MultiscaleCNF, x: Tensor, method: str, step, batch: int = 500, progress: bool = False
) -> Tensor:
    """Per-image bits/dim of dequantized images x (Hutchinson trace, the given solver), in chunks
    of `batch` images (a tqdm bar with progress=True)."""
    from ..training.progress import chunk_starts

    with using_solver(flow, method, step):
        return torch.cat(
            [flow.bits_per_dim(x[i : i + batch]) for i in chunk_starts(len(x), batch, "bits/dim", enabled=progress)]
        )


def evaluation_images(cfg: ImageConfig, x_train: Tensor, val_rows: int, test_rows: Optional[int] = None):
    """(train head, test images) dequantized as the task's final evaluation scores them: one generator
    seeded 20,000 + seed draws the noise of the first val_size (else `val_rows`) training images, then
    of the first `test_rows` test images (default: test_max, else all)."""
    g = torch.Generator().manual_seed(20_000 + cfg.seed)
    head = dequantize(x_train[: cfg.val_size or val_rows], g)
    rows = cfg.test_max if test_rows is None else test_rows
    return head, dequantize(load_images(cfg.data, cfg.data_dir, "test")[0][:rows], g)


class ImageEndTimeStep(AuxiliaryStep):
    """TO-FLOW's T update for every block after the theta step (T.grad from the same backward)."""

    def __init__(self, end_times: ImageEndTimes) -> None:
        self.end_times = end_times

    def step(self, out: StepOutput, ctx: RunContext) -> Dict[str, float]:
        self.end_times.step()
        return {"T": self.end_times.mean()}

    def state_dict(self) -> Dict[str, Any]:
        return {"adam": self.end_times.opt.state_dict()}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.end_times.opt.load_state_dict(state["adam"])


def _bits_per_dim(flow: Any, x: Tensor) -> Tensor:
    """What the memory plan probes for an evaluation chunk: per-image bits/dim."""
    return flow.bits_per_dim(x)


class ImageTask(Task):
    name = "image"
    monitor = "val_bits_per_dim"

    config: ImageConfig

    def run_label(self) -> str:
        return f"image {self.config.data}"

    def setup(self, ctx: RunContext) -> None:
        cfg = self.config
        self.flow = build_image_flow(cfg).to(ctx.device)
        self.model = self.flow
        self.device = ctx.device
        self.x_train = load_images(cfg.data, cfg.data_dir, "train")[0]
        x_val = load_images(cfg.data, cfg.data_dir, "val")[0]
        x_val = x_val[: cfg.val_size] if cfg.val_size else x_val
        g = torch.Generator().manual_seed(10_000 + cfg.seed)
        self.x_val = dequantize(x_val, g).to(ctx.device)
        self.batches = EpochBatches(len(self.x_train), cfg.batch, cfg.seed, ctx.dist)
        self.rank = ctx.dist.rank
        self.shard = (cfg.batch, ctx.dist.shard(cfg.batch)) if ctx.dist.active else None
        stages = [(st.method, st.step()) for st in parse_schedule(cfg.schedule)] if cfg.schedule else []
        g = torch.Generator().manual_seed(30_000 + cfg.seed)
        probe = dequantize(self.x_train[:PROBE_ROWS], g).to(ctx.device)
        self.memory = plan_memory(
            self.flow,
            probe,
            cfg.batch // ctx.dist.world_size,
            ctx,
            cfg.max_memory,
            cfg.memory_plan,
            [(cfg.method, cfg.step())] + stages,
            max_chunk=cfg.eval_batch,
            evaluate=_bits_per_dim,
            eval_method=cfg.val_method,
            eval_what="bits/dim evaluation",
        )
        self.eval_batch = int(self.memory["eval_chunk"])  # at most cfg.eval_batch images at a time
        self.fm = (
            FlowMatching(self.flow, cfg.path, cfg.coupling, cfg.sigma_min) if cfg.objective == "flow-matching" else None
        )
        self.iteration = 0

    def parameters(self) -> List[torch.nn.Parameter]:
        return self.flow.theta()

    def auxiliary_steps(self, ctx: RunContext) -> Dict[str, AuxiliaryStep]:
        cfg = self.config
        steps: Dict[str, AuxiliaryStep] = {}
        if cfg.learn_T:
            steps["T"] = ImageEndTimeStep(ImageEndTimes(self.flow, cfg.T_lr, cfg.T_alpha, cfg.T_eps))
        steps.update(ema_steps(self.model, cfg.ema_decay(), self.parameters(), FM_EMA_WARMUP))
        return steps

    def enter_stage(self, stage: Stage) -> None:
        self.flow.set_solver(stage.method, stage.step())

    def batch(self, iteration: int, ctx: RunContext) -> Tensor:
        self.iteration = iteration
        idx = self.batches.indices(iteration)
        g = torch.Generator().manual_seed(iteration_seed(self.config.seed, iteration) * 7 + self.rank)
        return dequantize(self.x_train[idx], g).to(ctx.device)

    def training_loss(self, x: Tensor) -> StepOutput:
        flow, cfg = self.flow, self.config
        nan = float("nan")  # a plain number: no tensor made per step
        if self.fm is not None and cfg.flow_matching_at(self.iteration, cfg.iterations):
            fm_loss, fm_parts = self.fm.loss(x)
            fm_metrics: Dict[str, Any] = dict(
                loss=fm_loss.detach(),
                bits_per_dim=nan,
                nll=nan,
                kinetic=nan,
                jacobian=nan,
                T=torch.stack([t.detach().reshape(()) for t in flow.end_times()]).mean(),
                nfe_forward=1,
                fm_loss=fm_parts["fm_loss"],
            )
            return StepOutput(fm_loss, fm_metrics)
        for b in flow.cnfs:
            b.noise_shard = self.shard
        try:
            loss, parts = flow.loss(x)
        finally:
            for b in flow.cnfs:
                b.noise_shard = None
        stats = [b.last_stats for b in flow.cnfs]
        T = torch.stack([t.detach().reshape(()) for t in flow.end_times()]).mean()
        metrics: Dict[str, Any] = dict(
            loss=loss.detach(),
            bits_per_dim=parts["bits_per_dim"],
            nll=parts["nll"],
            kinetic=parts["kinetic"],
            jacobian=parts["jacobian"],
            T=T,
            nfe_forward=sum(s.nfe for s in stats),
            nfe_backward=lambda: sum(s.nfe_backward for s in stats),
        )
        if self.fm is not None:
            metrics["fm_loss"] = nan
        return StepOutput(loss, metrics)

    def validate(self, ctx: RunContext) -> Dict[str, float]:
        x = self.x_val[ctx.dist.rank :: ctx.dist.world_size]
        bpd = bits_per_dim_of(self.flow, x, *self.config.val_solver(), batch=self.eval_batch)
        if ctx.is_main and ctx.folder is not None:
            self.sample_grid(ctx.folder.file(f"samples_{ctx.iteration + 1:06d}.png"), *self.config.val_solver())
        return dict(val_bits_per_dim=ctx.dist.sample_mean(bpd))

    def sample_grid(self, path: Path, method: str, step) -> Path:
        from ..plotting_images import save_image_grid

        with using_solver(self.flow, method, step):
            g = torch.Generator(device=self.device).manual_seed(self.config.seed)
            x = self.flow.sample(self.config.samples, generator=g).clamp(0, 1)
        return save_image_grid(x, path, nrow=int(math.ceil(math.sqrt(self.config.samples))))

    def finish(self, ctx: RunContext) -> Dict[str, Any]:
        cfg, solver = self.config, self.config.val_solver()
        x_train, x_test = (x.to(ctx.device) for x in evaluation_images(cfg, self.x_train, len(self.x_val)))
        test = image_bits_per_dim(
            evaluate_density(
                self.flow,
                x_test,
                *solver,
                divergence=cfg.eval_divergence,
                probes=cfg.eval_probes,
                chunk=self.eval_batch,
                announce=lambda line: note(ctx, f"test: {line}"),
            ),
            self.flow.dim,
        )
        summary: Dict[str, Any] = dict(
            objective=cfg.objective,
            train_bits_per_dim=float(bits_per_dim_of(self.flow, x_train, *solver, self.eval_batch).mean()),
            val_bits_per_dim=float(bits_per_dim_of(self.flow, self.x_val, *solver, self.eval_batch).mean()),
            train_val_evaluation=f"hutchinson, 1 probe, {describe_solver(*solver)}",
            test_bits_per_dim=test["bits_per_dim"],
            test_bits_per_dim_se=test["bits_per_dim_se"],
            test_bits_per_dim_solver=test["solver"],
            test_nll=test["nll"],
            test_eval_divergence=test["divergence"],
            test_eval_probes=test["probes"],
            test_nfe=test["nfe"],
            test_inverse_error=test["inverse_error"],
            test_seconds_per_1000_images=test["seconds_per_1000_rows"],
            test_images=len(x_test),
            T=[float(t.detach()) for t in self.flow.end_times()],
            parameters=sum(p.numel() for p in self.flow.theta()),
            memory=self.memory,
        )
        if ctx.folder is not None:
            self.sample_grid(ctx.folder.file("samples.png"), *solver)
        if cfg.objective == "flow-matching":
            summary.update(ms_per_iteration_by_kind(ctx.history, cfg, cfg.iterations))
        summary["ema"] = self.config.ema_decay()  # the EMA decay the evaluations used (0: the trained weights)
        summary.update(lr=self.config.lr, net_time=self.config.net_time)  # what the run used (flow-matching defaults)
        summary["peak_memory_mb"] = peak_memory_mb(ctx.device)
        return summary


def train_image(
    cfg: ImageConfig, out: Optional[Path], progress: bool = True, resume: bool = False, tensorboard: bool = False
) -> Dict[str, Any]:
    """Train (or, with ``resume``, continue) and return summary.json's content."""
    return train("image", cfg, out, progress, resume, tensorboard)


def load_image_flow(path: Path):
    """(flow in eval mode, its training config) from best.pt or last.pt of `odeflow train image`."""
    from ..training.checkpoint import model_from_checkpoint

    return model_from_checkpoint(path, "image", ImageConfig, build_image_flow)
