"""The Trainer: one loop for every task (see task.py for what a task supplies).

Per iteration: multilevel stage switch -> the task's batch (this rank's shard) -> loss inside
DistributedDataParallel.forward -> finite checks -> backward -> gradient check (and clipping) ->
theta step (+ LR schedule) -> auxiliary steps (TO-FLOW's T, an EMA of the weights, whose
averages validation and the final evaluation then use) -> metrics row -> validation every
`val_every` (best.pt, early stopping) -> last.pt every `checkpoint_every`. summary.json says why
the run ended: ``"stopped": "plateau"`` (`patience` validations in a row that did not beat the
value of the last real improvement by more than `min_delta`; best.pt still follows every lower
value), ``"time_budget"`` or ``"budget"`` (the `iterations` ran out). A task without
validation keeps best.pt at its lowest training loss. A loss that turns non-finite, or stays
orders of magnitude above its best (`diverge_factor`, see divergence.py), stops the run with a
TrainingError and summary.json ``"status": "diverged"``. SIGTERM/SIGINT end
the iteration in flight, write last.pt and stop; `resume=True` continues from last.pt exactly
(model, optimizers, schedulers, stage, iteration, elapsed time, RNGs, early stopping).
Only rank 0 writes the run folder.
"""

from __future__ import annotations

import contextlib
import math
import random
import signal
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import numpy as np
import torch
from torch import nn

from ..solvers.errors import SolverError
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .compiled_update import CompiledUpdate
from .context import RunContext
from .cuda_graph import CapturedTrainingStep
from .distributed import Distributed
from .divergence import DIVERGED_HINT, DivergenceWatch
from .errors import NONFINITE_HINT, TrainingError, TrainingInterrupted
from .metrics_log import MetricsLog
from .optim import lr_value, make_lr_scheduler, make_optimizer, set_lr
from .progress import Progress
from .run_folder import RunFolder, check_run_folder
from .schedule import parse_schedule, stage_index
from .task import StepOutput, Task

# Settings that may change when a run is resumed; anything else must match the checkpoint.
RESUMABLE_CHANGES = (
    "iterations",
    "time_budget",
    "checkpoint_every",
    "patience",
    "min_delta",
    "cuda_graph",
    "compile",
    "max_memory",
    "memory_plan",
    "diverge_factor",
)


class _TaskForward(nn.Module):
    """The task's loss as a module's forward, so that DDP sees (and synchronises) the step."""

    def __init__(self, task: Task) -> None:
        super().__init__()
        self.model = task.model
        self._task = [task]  # a list: not registered as a submodule

    def forward(self, batch: Any) -> StepOutput:
        return self._task[0].training_loss(batch)


class Trainer:
    """Runs a task. ``out=None``: no run folder (no checkpoints, no resume)."""

    def __init__(
        self,
        task: Task,
        out: Optional[Path] = None,
        quiet: bool = False,
        tensorboard: bool = False,
        resume: bool = False,
        label: Optional[str] = None,
    ) -> None:
        if resume and out is None:
            raise ValueError("resume needs the run folder (--resume RUN_DIR)")
        self.task, self.cfg = task, task.config
        self.out = Path(out) if out is not None else None
        self.quiet, self.tensorboard, self.resume = quiet, tensorboard, resume
        self.label = label or task.run_label()
        self._signal: Optional[str] = None

    # ------------------------------------------------------------------------------------------
    def fit(self) -> Dict[str, Any]:
        dist = Distributed.from_environment(self.cfg.device)
        try:
            return self._fit(dist)
        finally:
            dist.close()

    def _fit(self, dist: Distributed) -> Dict[str, Any]:
        cfg, task = self.cfg, self.task
        device = dist.device(cfg.device)
        if task.shards_batch:
            dist.shard(cfg.batch)  # the global batch must split evenly over the processes
        state = self._resume_state() if self.resume else None
        if self.out is not None and not self.resume and dist.rank == 0:
            check_run_folder(self.out)  # before any work: an earlier run is never overwritten silently
        ctx = RunContext(device=device, dist=dist, folder=None, seed=cfg.seed, quiet=self.quiet)
        _seed_everything(cfg.seed)
        task.setup(ctx)  # data and model: a bad file or setting fails here, before the folder exists
        folder = RunFolder(self.out) if self.out is not None and dist.rank == 0 else None
        ctx.folder = folder
        aux = task.auxiliary_steps(ctx)  # first: an auxiliary optimizer may take parameters out of theta's
        params = list(task.parameters())
        opt = make_optimizer(cfg, params)
        sched = make_lr_scheduler(cfg, opt)
        stages = parse_schedule(cfg.schedule)
        forward = dist.wrap(_TaskForward(task), device)
        self._graphed: Optional[CapturedTrainingStep] = None
        self._update: Optional[CompiledUpdate] = None  # the compiled update, once the task compiles
        if cfg.cuda_graph:
            self._check_cuda_graph(dist, device)
        self.start, self.elapsed, self.best, self.bad_validations, stage = 0, 0.0, math.inf, 0, -1
        self.best_train, self.plateau_ref = math.inf, math.inf
        self._early_best: Optional[tuple] = None
        watch = DivergenceWatch(cfg.diverge_factor)
        validates = type(task).validate is not Task.validate  # else best.pt follows the training loss
        self._track_train_best = not validates and not cfg.cuda_graph
        self._validates = validates
        self._stage, self._save_seconds = stage, 0.0
        if state is not None:
            stage = self._load_state(state, stages, opt, sched, aux)
        if folder is not None:
            folder.write_config(
                dict(
                    asdict(cfg),
                    world_size=dist.world_size,
                    per_rank_batch=cfg.batch // dist.world_size if task.shards_batch else cfg.batch,
                )
            )
        log = self._metrics_log(folder, resumed=state is not None, watch=watch, history=ctx.history)
        bar = Progress(cfg.iterations, self.start, self.label, enabled=not self.quiet and dist.rank == 0)
        self._opt, self._sched, self._aux, self._folder, self._ctx = opt, sched, aux, folder, ctx
        previous = self._install_signal_handlers()
        it, stopped_early, out_of_time, last_val = self.start - 1, False, False, {}
        try:
            for it in range(self.start, cfg.iterations):
                ctx.iteration = it
                k = stage_index(stages, it) if stages else stage
                if k != stage:
                    stage = k
                    self._enter_stage(stages[stage])
                task.before_iteration(it, ctx)
                batch = task.batch(it, ctx)
                start, self._stage, self._save_seconds = time.perf_counter(), stage, 0.0
                try:
                    out = self._step(forward, params, batch, it)
                except TrainingError as err:
                    self._write_diverged(err, ctx.history)
                    raise
                row = self._row(it, out, dist, stage if stages else None, start)
                done = it + 1 == cfg.iterations
                if cfg.time_budget is not None and not done:
                    out_of_time = dist.broadcast_flag(self.elapsed >= cfg.time_budget)
                    done = out_of_time
                if (it + 1) % cfg.val_every == 0 or done:
                    with self._interruptible(it, stage, save=True), self._evaluation_weights():
                        last_val = task.validate(ctx)
                    row.update(last_val)
                    if self._after_validation(last_val, it, stage):
                        stopped_early = done = True
                ctx.history.append(row)
                if log is not None:
                    log.log(row)
                loss = float(row["loss"]) if "loss" in row else float(out.loss.detach())
                self._end_iteration(it, stage, loss, done, watch, dist)
                bar.update({k: v for k, v in row.items() if k in ("loss", "nfe_forward", "T", *last_val)})
                if done:
                    break
        except BaseException:
            self._restore_signal_handlers(previous)
            raise
        finally:
            bar.close()
            if log is not None:
                log.close()
        summary = self._summary(it, dist, stopped_early, out_of_time, last_val)
        ctx.iteration = it
        self.history = ctx.history
        try:
            if dist.rank == 0:
                with self._interruptible(it, stage, save=False), self._evaluation_weights():  # last.pt is on disk
                    summary.update(task.finish(ctx))
                if folder is not None:
                    folder.write_json("summary.json", summary)
        finally:
            self._restore_signal_handlers(previous)
        return dist.broadcast_object(summary)  # every rank returns rank 0's summary

    def _evaluation_weights(self) -> contextlib.ExitStack:
        """Every auxiliary step's `evaluation()` context (an EMA's averaged weights), entered together."""
        stack = contextlib.ExitStack()
        for step in self._aux.values():
            stack.enter_context(step.evaluation())
        return stack

    def _row(self, it: int, out: StepOutput, dist: Distributed, stage: Optional[int], start: float) -> Dict[str, Any]:
        """metrics.csv's row of an iteration: the task's metrics (averaged over processes), the
        auxiliary steps' (run here, after the update), stage, learning rate and training time."""
        row: Dict[str, Any] = {"iteration": it}
        row.update(self._reduce(out.metrics, dist))
        for step in self._aux.values():
            row.update(step.step(out, self._ctx))
        self.elapsed += time.perf_counter() - start - self._save_seconds  # best.pt writes not timed
        if stage is not None:
            row["stage"] = stage
        if self._sched is not None:
            row["lr"] = lr_value(self._opt)
        row["wall_time"] = self.elapsed
        return row

    def _end_iteration(
        self, it: int, stage: int, loss: float, done: bool, watch: DivergenceWatch, dist: Distributed
    ) -> None:
        """After an iteration: best.pt of a replayed CUDA graph step, the divergence watch (raises
        TrainingError), last.pt when due, and a pending signal (raises TrainingInterrupted)."""
        if not self._validates and self.cfg.cuda_graph and loss < self.best_train:  # saved after the update
            self.best_train = loss
            self._save("best.pt", it, stage, extra={"train_loss": loss})
        cause = watch.update(loss, it)
        if cause is not None:
            diverged = TrainingError(it, cause, DIVERGED_HINT)
            self._write_diverged(diverged, self._ctx.history)
            raise diverged
        interrupted = dist.broadcast_flag(self._signal is not None) if dist.active else self._signal
        if (it + 1) % self.cfg.checkpoint_every == 0 or done or interrupted:
            self._save("last.pt", it, stage)
        if interrupted:
            self._write_early_best()
            raise TrainingInterrupted(self._signal or "signal", it, str(self.out))

    def _check_cuda_graph(self, dist: Distributed, device: torch.device) -> None:
        """ValueError when --cuda-graph cannot work for this task, launch or device."""
        problem = (
            self.task.cuda_graph_problem()
            or ("CUDA graphs do not combine with torchrun/DDP here" if dist.active else None)
            or (None if device.type == "cuda" else f"the run's device is {device}, not a GPU")
        )
        if problem:
            raise ValueError(f"--cuda-graph: {problem}; run without --cuda-graph")

    def _load_state(self, state: Dict[str, Any], stages: list, opt: Any, sched: Any, aux: Dict[str, Any]) -> int:
        """Model, optimizer, scheduler, auxiliary steps, task, counters and RNGs from last.pt;
        returns the stage the run was in."""
        task = self.task
        task.model.load_state_dict(state["model"])
        stage = state["stage"]
        if stage >= 0:
            task.enter_stage(stages[stage])
        opt.load_state_dict(state["optimizer"])
        if sched is not None:
            sched.load_state_dict(state["scheduler"])
        for name, step in aux.items():  # {}: a step the checkpoint did not have (an EMA added since)
            step.load_state_dict(state["auxiliary"].get(name, {}))
        task.load_state_dict(state["task"])
        self.start, self.elapsed = state["iteration"] + 1, state["elapsed"]
        self.best, self.bad_validations = state["best"], state["bad_validations"]
        self.best_train = state.get("best_train", math.inf)
        self.plateau_ref = state.get("plateau_ref", self.best)
        set_rng_state(state["rng"])
        return stage

    def _metrics_log(
        self, folder: Optional[RunFolder], resumed: bool, watch: DivergenceWatch, history: List[Dict[str, Any]]
    ) -> Optional[MetricsLog]:
        """metrics.csv (and TensorBoard); a resumed run reads its history back, into the context
        and the divergence watch."""
        if folder is None:
            return None
        log = MetricsLog(
            folder.file("metrics.csv"),
            resume_from=self.start if resumed else None,
            tensorboard_dir=folder.file("tensorboard") if self.tensorboard else None,
        )
        if resumed:
            history.extend({k: _number(v) for k, v in r.items()} for r in log.rows)
            for r in history:
                if "loss" in r:
                    watch.update(float(r["loss"]), int(r["iteration"]))
        return log

    def _enter_stage(self, stage: Any) -> None:
        """A multilevel stage begins: the task's solver, and the learning rate when the stage sets one."""
        self._graphed = None  # a new solver or lr: captured again at the next step
        self.task.enter_stage(stage)
        if stage.lr is not None:
            set_lr(self._opt, stage.lr)

    def _summary(
        self, it: int, dist: Distributed, stopped_early: bool, out_of_time: bool, last_val: Dict[str, Any]
    ) -> Dict[str, Any]:
        """summary.json's engine part: iterations, time, why the run stopped, best and last validation."""
        summary: Dict[str, Any] = dict(
            iterations=it + 1,
            train_seconds=self.elapsed,
            ms_per_iter=1e3 * self.elapsed / max(1, it + 1),
            world_size=dist.world_size,
            stopped_early=stopped_early,
            status="stopped early" if stopped_early else "completed",
            stopped="plateau" if stopped_early else "time_budget" if out_of_time else "budget",
        )
        if math.isfinite(self.best):
            summary[f"best_{self.task.monitor}"] = self.best
        summary.update(last_val)
        return summary

    # ------------------------------------------------------------------------------------------
    def _step(self, forward: nn.Module, params: List[nn.Parameter], batch: Any, it: int) -> StepOutput:
        cfg = self.cfg
        if cfg.cuda_graph:
            return self._graphed_step(forward, params, batch, it)
        for p in params:  # opt.zero_grad(set_to_none=True) without its profiler range: ~5x cheaper
            p.grad = None
        try:
            out = forward(batch)
            if not bool(torch.isfinite(out.loss.detach())):
                raise TrainingError(it, f"the loss is not finite ({float(out.loss.detach()):g})", NONFINITE_HINT)
            out.loss.backward()
        except SolverError as err:
            raise TrainingError(
                it,
                f"the solver failed: {err.reason} at t={err.t:.4g} (step {err.h:.3g})",
                f"{err.hint}; or {NONFINITE_HINT}",
            ) from None
        grads = [p.grad for p in params if p.grad is not None]
        if grads:
            if cfg.grad_clip is not None:
                finite = bool(torch.isfinite(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)))
            else:  # no clipping: only the check (clip_grad_norm_ at inf cost 3-5x more, rescaling by 1)
                finite = all_finite(grads)
            if not finite:
                raise TrainingError(it, "the gradient is not finite", NONFINITE_HINT)
        self._keep_best_train(out, it)
        self._optimizer_step()
        if self._sched is not None:
            self._sched.step()
        return out

    def _optimizer_step(self) -> None:
        """opt.step(): compiled (`CompiledUpdate`) once the task's solves are compiled, else eager."""
        if self._update is None and self.task.compiles():
            self._update = CompiledUpdate(self._opt, cuda_graph=bool(self.cfg.cuda_graph))
        if self._update is not None:
            self._update()
        else:
            self._opt.step()

    def _keep_best_train(self, out: StepOutput, it: int) -> None:
        """Before the update: the parameters that gave the lowest training loss so far go to best.pt
        (a task without validation), or, before a validating task's first validation, into memory
        (written as best.pt only if the run diverges before it validates)."""
        early = self._validates and not math.isfinite(self.best)
        if not (self._track_train_best or early):
            return
        value = float(out.loss.detach())
        if not value < self.best_train:
            return
        begin = time.perf_counter()
        self.best_train = value
        if self._track_train_best:
            self._save("best.pt", it, self._stage, extra={"train_loss": value})
        else:
            weights = {k: v.detach().clone() for k, v in self.task.model.state_dict().items()}
            self._early_best = (it, self._stage, weights)
        self._save_seconds += time.perf_counter() - begin

    def _graphed_step(self, forward: nn.Module, params: List[nn.Parameter], batch: Any, it: int) -> StepOutput:
        """The step replayed from a CUDA graph (captured at the first step and after a stage
        change). The finite checks run after the replay: a non-finite loss or gradient stops the
        run as in eager mode, with the files on disk untouched (the update was applied in memory)."""
        if self._graphed is None:
            limit = self.cfg.grad_clip if self.cfg.grad_clip is not None else math.inf
            self._graphed = CapturedTrainingStep(forward, params, self._opt, batch, limit)
        out, norm = self._graphed(batch)
        if not bool(torch.isfinite(out.loss.detach())):
            raise TrainingError(it, f"the loss is not finite ({float(out.loss.detach()):g})", NONFINITE_HINT)
        if not bool(torch.isfinite(norm)):
            raise TrainingError(it, "the gradient is not finite", NONFINITE_HINT)
        return out

    @staticmethod
    def _reduce(metrics: Dict[str, Any], dist: Distributed) -> Dict[str, Any]:
        """Metrics as Python numbers, averaged over ranks (one device sync for all tensors)."""
        metrics = {k: v() if callable(v) else v for k, v in metrics.items()}  # values known after backward
        names = list(metrics)
        if not names:
            return {}
        if not dist.active:
            tensors = [k for k in names if isinstance(metrics[k], torch.Tensor)]
            if all(metrics[k].device.type == "cpu" for k in tensors):  # no device: float() is no sync
                values = [float(metrics[k].detach()) for k in tensors]
            else:  # one device sync for all of them
                values = torch.stack([metrics[k].detach().double().reshape(()).cpu() for k in tensors]).tolist()
            out = dict(metrics)
            out.update(zip(tensors, values))
            return out
        stacked = torch.stack(
            [torch.as_tensor(metrics[k], dtype=torch.float64).detach().reshape(()).cpu() for k in names]
        )
        return dict(zip(names, dist.mean(stacked).tolist()))

    def _after_validation(self, val: Dict[str, float], it: int, stage: int) -> bool:
        """best.pt when the monitored metric improved; True when early stopping says stop."""
        key = self.task.monitor
        if key not in val:
            return False
        value = val[key] if self.task.monitor_mode == "min" else -val[key]
        if math.isfinite(value) and value < self.best:
            self.best = value
            self._save("best.pt", it, stage, extra={key: val[key]})
        if math.isfinite(value) and value < self.plateau_ref - self.cfg.min_delta:
            self.plateau_ref, self.bad_validations = value, 0  # a real improvement: the count restarts
            return False
        self.bad_validations += 1
        return self.cfg.patience is not None and self.bad_validations >= self.cfg.patience

    def _write_early_best(self) -> None:
        """best.pt of a run that ends (diverged or interrupted) before its first validation: the
        parameters with the lowest training loss so far."""
        if self._folder is None or self._folder.file("best.pt").is_file() or self._early_best is None:
            return
        it, stage, model_state = self._early_best
        self._save("best.pt", it, stage, extra={"train_loss": self.best_train}, model_state=model_state)

    def _write_diverged(self, err: TrainingError, history: List[Dict[str, Any]]) -> None:
        """summary.json of a run that could not go on: status, iteration, cause and hint."""
        if self._folder is None:
            return
        self._write_early_best()
        summary: Dict[str, Any] = dict(
            status="diverged", iteration=err.iteration, cause=err.cause, hint=err.hint, iterations=err.iteration
        )
        if math.isfinite(self.best_train):
            summary["best_train_loss"] = self.best_train
        if math.isfinite(self.best):
            summary[f"best_{self.task.monitor}"] = self.best
        if (self._folder.file("best.pt")).is_file():
            summary["best_checkpoint"] = str(self._folder.file("best.pt"))
        self._folder.write_json("summary.json", summary)

    def _save(
        self,
        name: str,
        it: int,
        stage: int,
        extra: Optional[Dict[str, Any]] = None,
        model_state: Optional[Dict[str, Any]] = None,
    ) -> None:
        if self._folder is None:
            return
        weights = model_state if model_state is not None else self.task.model.state_dict()
        if not all(bool(torch.isfinite(v).all()) for v in weights.values() if v.is_floating_point()):
            if not self.quiet:
                print(f"warning: not writing {name} at iteration {it}: the model has non-finite values")
            return
        state: Dict[str, Any] = dict(
            model=weights,
            kind=self.task.name,
            config=asdict(self.cfg),
            iteration=it,
            stage=stage,
            elapsed=self.elapsed,
            best=self.best,
            best_train=self.best_train,
            plateau_ref=self.plateau_ref,
            bad_validations=self.bad_validations,
            optimizer=self._opt.state_dict(),
            scheduler=self._sched.state_dict() if self._sched is not None else None,
            auxiliary={k: v.state_dict() for k, v in self._aux.items()},
            task=self.task.state_dict(),
            rng=rng_state(),
            world_size=self._ctx.dist.world_size,
        )
        if extra:
            state.update(extra)
        save_checkpoint(state, self._folder.file(name))

    def _resume_state(self) -> Dict[str, Any]:
        if self.out is None:  # __init__ refuses resume without a folder
            raise ValueError("resume needs the run folder (--resume RUN_DIR)")
        path = self.out / "last.pt"
        if not path.is_file():
            raise FileNotFoundError(
                f"cannot resume: {path} does not exist (the run folder has no last.pt; "
                "start a new run without --resume)"
            )
        state = load_checkpoint(path)
        if state.get("kind") != self.task.name:
            raise ValueError(f"cannot resume: {path} holds a {state.get('kind')!r} run, not {self.task.name!r}")
        if "optimizer" not in state or "rng" not in state:
            raise ValueError(f"cannot resume: {path} has no optimizer/RNG state (written by an older odeflow)")
        ours = asdict(self.cfg)
        diff = sorted(k for k in ours if k not in RESUMABLE_CHANGES and state["config"].get(k, ours[k]) != ours[k])
        if diff:
            raise ValueError(
                f"cannot resume with changed settings {diff}: the run was trained with "
                f"{ {k: state['config'].get(k) for k in diff} }; only {', '.join(RESUMABLE_CHANGES)} "
                "may change when resuming"
            )
        return state

    # ------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _interruptible(self, it: int, stage: int, save: bool) -> Iterator[None]:
        """Validation and the final evaluation stop within seconds of SIGTERM/SIGINT (the handler
        raises inside them); with ``save`` last.pt is written for the completed iteration ``it``."""
        self._in_evaluation = True
        try:
            yield
        except _Stop:
            if save:
                self._save("last.pt", it, stage)
                self._write_early_best()
            raise TrainingInterrupted(self._signal or "signal", it, str(self.out)) from None
        finally:
            self._in_evaluation = False

    def _install_signal_handlers(self) -> Dict[int, Any]:
        previous: Dict[int, Any] = {}
        self._in_evaluation = False
        if self.out is None:
            return previous

        def handler(signum: int, frame: Any) -> None:
            self._signal = signal.Signals(signum).name
            signal.signal(signum, previous.get(signum, signal.SIG_DFL))  # a second signal acts at once
            if self._in_evaluation:
                raise _Stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                previous[sig] = signal.signal(sig, handler)
            except ValueError:  # not the main thread: no handlers, checkpoints still periodic
                pass
        return previous

    @staticmethod
    def _restore_signal_handlers(previous: Dict[int, Any]) -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)


def all_finite(tensors: List[torch.Tensor]) -> bool:
    """Whether every entry of the tensors is finite. One fused check over all of them where they
    share a device (the op GradScaler uses: it multiplies by 1, which changes no value, and flags
    any NaN or inf; one dispatch instead of one reduction per tensor, ~5x cheaper than the sum of
    20 small gradients); else, or where that op refuses the tensors, one check per tensor."""
    devices = {t.device for t in tensors}
    if len(devices) == 1:
        device = devices.pop()
        found, one = torch.zeros(1, device=device), torch.ones(1, device=device)
        try:
            torch._amp_foreach_non_finite_check_and_unscale_(tensors, found, one)
            return not bool(found)
        except (RuntimeError, TypeError):
            pass  # a dtype or layout the fused check does not take
    return all(bool(torch.isfinite(t).all()) for t in tensors)


class _Stop(BaseException):
    """Raised by the signal handler inside an evaluation (caught by Trainer._interruptible)."""


def _number(text: str) -> Any:
    """A metrics.csv cell back as a number ('' -> NaN)."""
    if text == "":
        return math.nan
    value = float(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text else value


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
