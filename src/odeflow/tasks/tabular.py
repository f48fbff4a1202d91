"""Task `tabular`: density estimation on tabular data with the stacked CNF of seed 000 §4.2.3
(Tables 2-5): POWER, GAS, HEPMASS, MINIBOONE, BSDS300 from the standard files, or the
built-in digits / breast_cancer.

Training: mean NLL with Hutchinson's trace (Gaussian noise, one draw per solve), shuffled
epochs over the training split; Disc-Opt (rk4, fixed h, backprop through the steps) or
Opt-Disc (dopri5 with the continuous adjoint, rtol 1e-6 / atol 1e-8 as in the seed).
With objective 'flow-matching' each step regresses the stack's field on a path between data and
noise instead (`flows.FlowMatching`: one net evaluation, no solve), optionally followed by
`finetune_likelihood` likelihood iterations.
Validation: NLL with the exact trace and a fixed accurate solver (rk4 with h / 5 by default),
so both gradient modes are judged the same way; the Trainer keeps best.pt and stops early
after `patience` validations without improvement; a multilevel `schedule` switches solver and
learning rate (Fig. 8). Test (on best.pt): NLL, inverse error mean ||f^-1(f(x)) - x||_2 and
NFE-F with the training solver and re-discretized with rk4 h / 5 and dopri5 1e-6/1e-8 (Table 5).

Config files (configs/<data>.toml): top-level keys are `TabularConfig` fields, `[model]` holds
the architecture (blocks, layers, multiplier, activation, layer, T) and `[disc-opt]` /
`[opt-disc]` the settings of each gradient mode (method, step size or tolerances, batch).
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

import torch
from torch import Tensor

from ..data.tabular import TabularData, load_tabular
from ..flows.cnf import CNFStack
from ..flows.evaluation import evaluate_density
from ..flows.flow_matching import FlowMatching
from ..flows.stacked import StackSpec, build_stacked_cnf, nll_per_sample
from ..solvers.stepping import Adaptive, FixedStep
from ..training import RunContext, StepOutput, Task
from ..training.data import EpochBatches
from ..training.ema import averaged_weights, ema_steps
from ..training.schedule import Stage, parse_schedule
from .cnf_memory import note, peak_memory_mb, plan_memory
from .objective_config import FM_EMA_WARMUP
from .run import train
from .tabular_config import MODES, TabularConfig

MODEL_KEYS = tuple(f.name for f in dataclasses.fields(StackSpec))
DTYPES = {"float32": torch.float32, "float64": torch.float64}
TIMED_ROWS = 32  # validation rows timed to size an automatic validation pass


# --- config files -------------------------------------------------------------------------------
def default_config_file(data: str) -> Optional[Path]:
    """configs/<data>.toml in the working directory, else the shipped preset <data>; None if neither."""
    from ..preset_files import presets_folder

    for folder in (Path("configs"), presets_folder()):
        path = folder / f"{data}.toml"
        if path.is_file():
            return path
    return None


def flatten_config(values: Dict[str, Any], mode: Optional[str], source: str = "config") -> Dict[str, Any]:
    """Top-level keys, then [model], then the table of the mode ([disc-opt] or [opt-disc])."""
    values = dict(values)
    mode = mode or values.get("mode", "disc-opt")
    if mode not in MODES:
        raise ValueError(f"{source}: unknown mode {mode!r}; valid: {', '.join(MODES)}")
    tables = {k: values.pop(k) for k in ("model", *MODES) if k in values}
    flat = {k: v for k, v in values.items()}
    for key, value in tables.get("model", {}).items():
        if key not in MODEL_KEYS:
            raise ValueError(f"{source}: unknown [model] key {key!r}; valid: {', '.join(MODEL_KEYS)}")
        flat[key] = value
    flat.update(tables.get(mode, {}))
    flat["mode"] = mode
    if "step_size" not in tables.get(mode, {}) and mode == "opt-disc" and flat.get("method") == "dopri5":
        flat["step_size"] = None
    fields = {f.name for f in dataclasses.fields(TabularConfig)}
    unknown = sorted(set(flat) - fields)
    if unknown:
        raise ValueError(f"{source}: unknown keys {unknown}; valid: {', '.join(sorted(fields))}")
    return flat


def read_tabular_config(path: Path, mode: Optional[str] = None, **overrides: Any) -> TabularConfig:
    """TabularConfig from a config file (see the module docstring), then keyword overrides."""
    from ..preset_files import read_config, resolve_config

    path = resolve_config(path)
    values = read_config(path)
    flat = flatten_config(values, overrides.get("mode", mode), str(path))
    flat.update(overrides)
    return TabularConfig(**flat)


# --- the task -----------------------------------------------------------------------------------
def build_tabular_flow(cfg: TabularConfig, dim: int) -> CNFStack:
    torch.manual_seed(cfg.seed)
    flow = build_stacked_cnf(
        dim,
        cfg.spec(),
        method=cfg.method,
        step=cfg.step(),
        adjoint=cfg.mode == "opt-disc",
        divergence=cfg.divergence,
        noise=cfg.noise,
        seminorm=cfg.seminorm,
        net_time=cfg.net_time,
    )
    return flow.to(DTYPES[cfg.dtype])


class TabularTask(Task):
    name = "tabular"
    monitor = "val_nll"

    config: TabularConfig

    def run_label(self) -> str:
        return f"tabular {self.config.data} {self.config.mode}"

    def __init__(self, config: TabularConfig, data: Optional[TabularData] = None) -> None:
        super().__init__(config)
        self.data = data

    def setup(self, ctx: RunContext) -> None:
        cfg = self.config
        if self.data is None:
            self.data = load_tabular(cfg.data, cfg.data_dir, seed=cfg.seed)
        dtype = DTYPES[cfg.dtype]
        as_tensor = lambda a, n=None: torch.tensor(a[:n], dtype=dtype, device=ctx.device)  # noqa: E731
        self.x_train = as_tensor(self.data.train)
        self.x_val = as_tensor(self.data.val, cfg.val_max)
        n = len(self.x_train)
        if cfg.batch > n:
            message = (
                f"batch {cfg.batch} is larger than the training set ({n} rows of {cfg.data}): "
                f"each iteration uses the whole training set (batch {n})"
            )
            if ctx.quiet:
                warnings.warn(message, stacklevel=2)
            note(ctx, f"warning: {message}")
            cfg.batch = n
        self.flow = build_tabular_flow(cfg, self.data.dim).to(ctx.device)
        self.model = self.flow
        self.batches = EpochBatches(n, cfg.batch, cfg.seed, ctx.dist)
        self.shard = (cfg.batch, ctx.dist.shard(cfg.batch)) if ctx.dist.active else None
        self.fm = FlowMatching(self.flow, cfg.path, cfg.coupling, cfg.sigma_min)
        self.iteration = 0
        stages = [(st.method, st.step()) for st in parse_schedule(cfg.schedule)] if cfg.schedule else []
        solvers = [(cfg.method, cfg.step())] + stages
        self.memory = plan_memory(
            self.flow,
            self.x_train[:64],
            cfg.batch // ctx.dist.world_size,
            ctx,
            cfg.max_memory,
            cfg.memory_plan,
            solvers,
            cfg.eval_chunk,
        )
        self.chunk = self.memory["eval_chunk"]
        self.val_rows: Optional[int] = cfg.val_max
        self._since = time.perf_counter()

    def auxiliary_steps(self, ctx: RunContext):
        """An EMA of the weights (`ema`), used by validation, the test and best.pt's readers."""
        return ema_steps(self.model, self.config.ema_decay(), self.parameters(), FM_EMA_WARMUP)

    def enter_stage(self, stage: Stage) -> None:
        self.flow.set_solver(stage.method, stage.step())

    def batch(self, iteration: int, ctx: RunContext) -> Tensor:
        self.iteration = iteration
        return self.x_train[self.batches.indices(iteration).to(self.x_train.device)]

    def training_loss(self, x: Tensor) -> StepOutput:
        flow, cfg = self.flow, self.config
        nan = float("nan")  # a plain number: no tensor made per step
        if cfg.flow_matching_at(self.iteration, cfg.iterations):
            fm_loss, fm_parts = self.fm.loss(x)
            return StepOutput(fm_loss, dict(loss=fm_loss.detach(), nll=nan, fm_loss=fm_parts["fm_loss"], nfe_forward=1))
        for block in flow.cnfs:
            block.noise_shard = self.shard
        try:
            loss, parts = flow.loss(x)
        finally:
            for block in flow.cnfs:
                block.noise_shard = None
        stats = flow.nfe
        metrics: Dict[str, Any] = dict(
            loss=loss.detach(),
            nll=parts["nll"],
            nfe_forward=sum(s.nfe for s in stats),
            nfe_backward=lambda: sum(s.nfe_backward for s in stats),
        )
        if cfg.objective == "flow-matching":
            metrics["fm_loss"] = nan
        return StepOutput(loss, metrics)

    def validate(self, ctx: RunContext) -> Dict[str, float]:
        """Validation NLL on the first `val_rows` rows, streamed in chunks. Without --val-max the
        number of rows is fixed at the first validation: as many as take `val_share` of the
        training time since setup, timed on the first TIMED_ROWS rows, and never fewer than
        min(val_min, the whole validation set): best.pt is picked on this estimate, whose standard
        error s / sqrt(rows) (s: the per-row NLL's standard deviation) the note reports."""
        cfg = self.config
        x = self.x_val[ctx.dist.rank :: ctx.dist.world_size]
        label = "validation" if ctx.is_main and not ctx.quiet else None
        first = None
        if self.val_rows is None:
            train_seconds = time.perf_counter() - self._since
            start = time.perf_counter()
            first = nll_per_sample(self.flow, x[: min(self.chunk, TIMED_ROWS)], *cfg.val_solver(), chunk=self.chunk)
            per_row = (time.perf_counter() - start) / max(1, first.shape[0])
            timed = int(cfg.val_share * train_seconds / max(per_row, 1e-12))
            floor = -(-cfg.val_min // ctx.dist.world_size)  # per rank
            rows = max(first.shape[0], timed, floor)
            rows = int(ctx.dist.broadcast_object(min(rows, x.shape[0])))
            self.val_rows = rows * ctx.dist.world_size
            spread = float(first.std()) if first.shape[0] > 1 else float("nan")
            why = (
                f"{cfg.val_share:.0%} of the {train_seconds:.1f} s of training so far"
                if timed >= floor
                else f"the floor --val-min {cfg.val_min} (the time share {cfg.val_share:.0%} would give {timed * ctx.dist.world_size})"
            )
            note(
                ctx,
                f"validation on {self.val_rows} of {len(self.x_val)} rows ({why}; {per_row * 1e3:.2f} ms per "
                f"row; standard error of the NLL about {spread / (self.val_rows**0.5):.3g} nats; "
                "--val-max N sets it)",
            )
        rows = min(x.shape[0], max(1, self.val_rows // ctx.dist.world_size))
        if first is not None:
            rest = x[first.shape[0] : rows]
            per_sample = torch.cat(
                [first[:rows]]
                + (
                    [nll_per_sample(self.flow, rest, *cfg.val_solver(), chunk=self.chunk, progress=label)]
                    if len(rest)
                    else []
                )
            )
        else:
            per_sample = nll_per_sample(self.flow, x[:rows], *cfg.val_solver(), chunk=self.chunk, progress=label)
        self._since = time.perf_counter()
        return dict(val_nll=ctx.dist.sample_mean(per_sample))

    def state_dict(self) -> Dict[str, Any]:
        units: Dict[str, Any] = {}
        if self.data is not None and self.data.mean is not None and self.data.std is not None:
            columns = list(self.data.columns or [])
            units = dict(columns=columns, mean=self.data.mean.tolist(), std=self.data.std.tolist())
        return dict(val_rows=self.val_rows, units=units)  # units: samples back in the table's units

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        if self.config.val_max is None and state.get("val_rows") is not None:
            self.val_rows = int(state["val_rows"])

    def finish(self, ctx: RunContext) -> Dict[str, Any]:
        cfg, flow = self.config, self.flow
        best = ctx.folder.file("best.pt") if ctx.folder is not None else None
        if best is not None and best.is_file():  # early stopping: test the best validation model
            from ..training.checkpoint import load_checkpoint

            flow.load_state_dict(averaged_weights(load_checkpoint(best)))
        data = self.data
        assert data is not None  # loaded by setup
        x = torch.tensor(data.test[: cfg.test_max], dtype=DTYPES[cfg.dtype], device=ctx.device)
        solvers = {
            "": (flow.cnfs[0].method, flow.cnfs[0].step),
            "_rk4_fine": ("rk4", FixedStep(cfg.fine_h())),
            "_dopri5": ("dopri5", Adaptive(1e-6, 1e-8)),
        }
        summary: Dict[str, Any] = dict(
            data=cfg.data,
            dim=data.dim,
            mode=cfg.mode,
            tested_model="best.pt" if best is not None and best.is_file() else "last",
            memory=self.memory,
            val_rows=self.val_rows,
            test_rows=int(x.shape[0]),
        )
        summary.update(objective=cfg.objective, eval_divergence=cfg.eval_divergence, eval_probes=cfg.eval_probes)
        for suffix, (method, step) in solvers.items():
            where = f"test{suffix.replace('_', ' ') or ' (training solver)'}"
            r = evaluate_density(
                flow,
                x,
                method,
                step,
                divergence=cfg.eval_divergence,
                probes=cfg.eval_probes,
                chunk=self.chunk,
                announce=_announcer(ctx, where),
            )
            summary.update(
                {
                    f"test_nll{suffix}": r["nll"],
                    f"test_nll{suffix}_se": r["nll_se"],
                    f"test_nll{suffix}_solver": r["solver"],
                    f"test_inverse_error{suffix}": r["inverse_error"],
                    f"test_nfe{suffix}": r["nfe"],
                }
            )
        if ctx.folder is not None and ctx.history:
            from ..plotting import plot_loss_vs_time

            plot_loss_vs_time(ctx.history, ctx.folder.file("loss_vs_time.png"), title=f"{cfg.data} {cfg.mode}")
        summary["ema"] = self.config.ema_decay()  # the EMA decay the evaluations used (0: the trained weights)
        summary.update(lr=self.config.lr, net_time=self.config.net_time)  # what the run used (flow-matching defaults)
        summary["peak_memory_mb"] = peak_memory_mb(ctx.device)
        return summary

    def describe(self, summary: Dict[str, Any]) -> str:
        se = lambda key: f" ± {summary[key]:.3f}" if key in summary else ""  # noqa: E731
        return (
            f"{summary['data']} {summary.get('objective', 'likelihood')} {summary['mode']}: test NLL "
            f"{summary['test_nll']:.3f}{se('test_nll_se')} nats [{summary.get('test_nll_solver', '')}] (inverse error "
            f"{summary['test_inverse_error']:.2e}, NFE-F {summary['test_nfe']:.0f}); rk4 h/{self.config.fine_factor}: "
            f"{summary['test_nll_rk4_fine']:.3f} ({summary['test_inverse_error_rk4_fine']:.2e}); dopri5 1e-6/1e-8: "
            f"{summary['test_nll_dopri5']:.3f}{se('test_nll_dopri5_se')} ({summary['test_inverse_error_dopri5']:.2e}, "
            f"NFE-F {summary['test_nfe_dopri5']:.0f})"
        )


def _announcer(ctx: RunContext, where: str) -> Callable[[str], None]:
    return lambda line: note(ctx, f"{where}: {line}")


def train_tabular(
    cfg: TabularConfig,
    out: Optional[Path],
    progress: bool = True,
    resume: bool = False,
    tensorboard: bool = False,
    data: Optional[TabularData] = None,
) -> Dict[str, Any]:
    """Train (or continue) and return summary.json's content."""
    return train("tabular", cfg, out, progress, resume, tensorboard, data=data)


def load_tabular_flow(path: Path) -> Tuple[CNFStack, TabularConfig]:
    """(flow in eval mode with the exact trace, its config) from a tabular run's best.pt/last.pt."""
    from ..training.checkpoint import load_checkpoint

    return tabular_flow_from_state(load_checkpoint(path), path)


def tabular_flow_from_state(state: Dict[str, Any], where: Any = "checkpoint") -> Tuple[CNFStack, TabularConfig]:
    """The flow and config of a loaded checkpoint of kind 'tabular'."""
    if state.get("kind") != "tabular":
        raise ValueError(
            f"checkpoint {where} holds a {state.get('kind', 'unknown')!r} model, not a tabular CNF; "
            "pass a best.pt or last.pt written by `odeflow train tabular`"
        )
    known = {f.name for f in dataclasses.fields(TabularConfig)}
    cfg = TabularConfig(**{k: v for k, v in state["config"].items() if k in known})
    net = "blocks.0.net.net" if cfg.net_time == "reversed" else "blocks.0.net"  # ReversedTime wraps the net
    dim = state["model"][f"{net}.layers.0.linear.weight"].shape[1]
    flow = build_tabular_flow(cfg, int(dim))
    flow.load_state_dict(averaged_weights(state))  # the EMA's averages where the run kept one
    flow.eval()
    for block in flow.cnfs:
        block.divergence = "exact"
    return flow, cfg
