"""Task `sequence-classify`: classify irregular multivariate series (`odeflow train classify
--data gunpoint|uea:GunPoint|...|PATH.csv --model random-cde|ode-rnn|latent-ode|gru-dt|gru-d|ncde|nrde`;
the default, random-cde, is fitted in closed form by tasks.sequence_random, the others are
trained here by iterations).

Data: the sets sktime bundles (official train/test split) or a long CSV with a `label` column
(seeded split, `test_fraction` held out); `drop` removes that share of each series'
observations (once, seeded; per time point or per channel, data.drop), train and test alike;
with `normalize` 'series' each series z-normalised on its own (data.standardize); then channels
normalised with training statistics. A stratified `val_fraction` of the training
split is held out for validation: it picks the weights that are tested (lowest val_loss) and
stops training on a plateau (`patience` validations without improvement) inside a budget that
scales with the data (when `iterations` is unset, see sequence_classify_config.auto_iterations). Each
iteration: a shuffled minibatch put on the union of its times (with `per_sample` and `ode_rtol`,
each series on its own times and adaptive steps, `data.irregular.collate_rows`); loss = cross-entropy, and for the
latent ODE -ELBO / (observed values) + ce_weight * CE on z0 samples (Rubanova et al. 2019, KL
annealed). summary.json: test_accuracy, test_loss, stopped (plateau | budget | time_budget),
budget, tested_weights, seconds_per_epoch, parameters, and `warning` when the validation
accuracy never rose above chance (the majority class's share) or the test accuracy is at it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.classification import holdout
from ..data.drop import drop_observations
from ..data.irregular import IrregularBatch, Normalizer, Series, collate, collate_rows
from ..data.long_csv import load_labelled_long_csv
from ..data.standardize import standardize_each_series
from ..data.stratified import stratified_holdout
from ..data.uea import load_uea
from ..models.elbo import elbo, kl_normal_standard, kl_weight, masked_gaussian_log_likelihood
from ..models.ode_solver import ODESolver
from ..models.sequence_classifiers import LatentODEClassifier, make_sequence_classifier
from ..solvers.stepping import Adaptive
from ..training import RunContext, StepOutput, Task
from ..training.data import EpochBatches
from .chance import chance_warning
from .classify_report import data_and_test_report
from .run import train
from .sequence_classify_config import SequenceClassifyConfig, auto_iterations
from .series_sets import is_uea_name


@dataclass
class SequenceData:
    train: List[Series]
    val: List[Series]
    test: List[Series]
    classes: List[str]
    num_variables: int


def load_sequence_data(cfg: SequenceClassifyConfig, dtype: torch.dtype = torch.float32) -> SequenceData:
    """Train/validation/test series after dropping and normalisation (all seeded by cfg.seed)."""
    if is_uea_name(cfg.data):
        train, test, classes = load_uea(cfg.data, dtype)
    else:
        series, _, classes = load_labelled_long_csv(Path(cfg.data), dtype)
        if len(series) < 3:
            raise ValueError(f"{cfg.data}: {len(series)} series; need at least 3 (train, validation, test)")
        keep, held = holdout(len(series), cfg.test_fraction, seed=cfg.seed)
        train, test = [series[i] for i in keep.tolist()], [series[i] for i in held.tolist()]
        span = max(float(s.times[-1] - s.times[0]) for s in train)
        if span > 0:
            train = [Series(s.times / span, s.values, s.mask, s.label, s.name) for s in train]
            test = [Series(s.times / span, s.values, s.mask, s.label, s.name) for s in test]
    if cfg.drop > 0:
        train = drop_observations(train, cfg.drop, cfg.drop_mode, torch.Generator().manual_seed(cfg.seed))
        test = drop_observations(test, cfg.drop, cfg.drop_mode, torch.Generator().manual_seed(cfg.seed + 1))
    if cfg.normalize == "series":  # after the drop: each series scaled on the values a model sees
        train, test = standardize_each_series(train), standardize_each_series(test)
    keep, held = stratified_holdout([_class_of(s) for s in train], cfg.val_fraction, seed=cfg.seed)
    fit, val = [train[i] for i in keep.tolist()], [train[i] for i in held.tolist()]
    norm = Normalizer.fit(fit)
    return SequenceData(norm.apply(fit), norm.apply(val), norm.apply(test), classes, fit[0].values.shape[1])


def _class_of(s: Series) -> int:
    if s.label is None:
        raise ValueError(f"series {s.name!r} has no label; classification needs a label for every series")
    return int(s.label)


def _labels(b: IrregularBatch) -> Tensor:
    return b.labels.long()


@torch.no_grad()
def evaluate_sequences(
    model: torch.nn.Module,
    series: List[Series],
    device: Optional[torch.device] = None,
    chunk: int = 100,
    per_sample: bool = False,
) -> Tuple[Tensor, Tensor, Tensor]:
    """(per-series cross-entropy, predicted classes, true classes) of `model` in eval mode; each
    chunk of series is put on the union of its times, or with ``per_sample`` each series on its
    own (the latent ODE predicts from the posterior mean of z0). ``device``: where the model is
    (default the CPU)."""
    device = torch.device("cpu") if device is None else device
    model.eval()
    ce, pred, true = [], [], []
    for i in range(0, len(series), chunk):
        b = _collate(series[i : i + chunk], per_sample).to(device)
        logits = _forward(model, b)
        y = _labels(b)
        ce.append(F.cross_entropy(logits, y, reduction="none"))
        pred.append(logits.argmax(-1))
        true.append(y)
    return torch.cat(ce), torch.cat(pred), torch.cat(true)


def _collate(series: List[Series], per_sample: bool) -> IrregularBatch:
    """The union grid of the series' times, or each on its own times (`collate_rows`)."""
    return collate_rows(series) if per_sample else collate(series)


def _forward(model: torch.nn.Module, b: IrregularBatch) -> Tensor:
    """Logits [B, C]; each series on its own times when the batch has lengths."""
    if b.lengths is None:
        return model(b.times, b.values, b.mask)
    return model(b.times, b.values, b.mask, b.lengths)


def build_sequence_classifier(cfg: SequenceClassifyConfig, data: SequenceData) -> torch.nn.Module:
    """The model of cfg for data (the neural CDE's and RDE's count channels scaled by 1 / the
    longest training series, so they run from 0 to at most 1; the RDE's windows cut the longest
    training span into cfg.windows, or `default_windows` of its length, equal windows)."""
    from ..models.nrde import default_windows

    longest = max(int(s.times.shape[0]) for s in data.train)
    origin = min(float(s.times[0]) for s in data.train)
    span = max(float(s.times[-1]) for s in data.train) - origin
    windows = cfg.windows if cfg.windows is not None else default_windows(longest)
    adaptive = (
        None if cfg.ode_rtol is None else ODESolver("dopri5", Adaptive(rtol=cfg.ode_rtol, atol=cfg.ode_rtol / 10))
    )
    model = make_sequence_classifier(
        cfg.model,
        data.num_variables,
        len(data.classes),
        cfg.hidden,
        cfg.field_hidden,
        cfg.latent_dim,
        cfg.step_size,
        cfg.method,
        spline=cfg.spline,
        count_scale=1.0 / longest,
        adjoint=cfg.mode == "opt-disc",
        solver=adaptive,
        window=span / windows if span > 0 else 1.0,
        origin=origin,
        windows=windows,
        span=span if span > 0 else 1.0,
        reservoir=cfg.reservoir,
        shifts=cfg.shifts,
        seed=cfg.seed,
    )
    if adaptive is not None and isinstance(model, LatentODEClassifier):
        model.latent.solver = adaptive  # the decoder too
    return model


def load_sequence_classifier(path: Path) -> Tuple[torch.nn.Module, SequenceClassifyConfig]:
    """(model in eval mode, its training config) from a best.pt / last.pt of a sequence-classify run."""
    import dataclasses

    from ..training.checkpoint import load_checkpoint

    state = load_checkpoint(path)
    if state.get("kind") != SequenceClassifyTask.name:
        raise ValueError(
            f"checkpoint {path} holds a {state.get('kind', 'unknown')!r} model, not a sequence "
            "classifier; pass a run folder, best.pt or last.pt of `odeflow train classify` on series data"
        )
    known = {f.name for f in dataclasses.fields(SequenceClassifyConfig)}
    cfg = SequenceClassifyConfig(**{k: v for k, v in state["config"].items() if k in known})
    model = build_sequence_classifier(cfg, load_sequence_data(cfg))
    model.load_state_dict(state["model"])
    return model.eval(), cfg


def choose_budget(cfg: SequenceClassifyConfig) -> str:
    """Set cfg.iterations from --epochs, or from the data when neither is given (the auto budget,
    which the validation plateau usually ends first); say how it was chosen."""
    budget = "fixed"
    if cfg.epochs is not None or cfg.iterations is None:
        n = len(load_sequence_data(cfg).train)
        if cfg.batch > n:
            raise ValueError(f"batch {cfg.batch} is larger than the training set ({n} series); use a smaller --batch")
        per_epoch = n // cfg.batch
        if cfg.epochs is not None:
            cfg.iterations = cfg.epochs * per_epoch
        else:
            cfg.iterations, budget = auto_iterations(per_epoch), "auto"
    return f"{budget}: {cfg.iterations} iterations"


class SequenceClassifyTask(Task):
    name = "sequence-classify"
    monitor = "val_loss"

    config: SequenceClassifyConfig
    budget = "fixed"  # how the iteration count was chosen: "fixed|auto: N iterations"

    def __init__(self, config: SequenceClassifyConfig) -> None:
        if config.model == "random-cde":
            raise ValueError(
                "random-cde (the default series model) has no iterations to train (a fixed random CDE and a "
                "closed-form ridge readout); fit it with `odeflow train classify --data ...` (or "
                "tasks.sequence_classify.train_sequence_classify), or pass --model ode-rnn (or latent-ode, gru-dt, "
                "gru-d, ncde, nrde) to train by iterations"
            )
        super().__init__(config)
        self.budget = choose_budget(config)

    def run_label(self) -> str:
        return f"classify {self.config.model} {self.config.data}"

    def describe(self, summary: Dict[str, Any]) -> str:
        cfg, s = self.config, summary
        line = (
            f"{cfg.model} on {cfg.data} (drop {cfg.drop}, {cfg.drop_mode}): {s['iterations']} iterations "
            f"({s['epochs_trained']:.1f} epochs, {s['seconds_per_epoch']:.2f} s/epoch), {s['parameters']} "
            f"parameters; stopped: {s['stopped']} (tested the weights of {s['tested_weights']}); "
            f"test accuracy {s['test_accuracy']:.4f}"
        )
        return line + (f"\nwarning: {s['warning']}" if "warning" in s else "")

    def setup(self, ctx: RunContext) -> None:
        cfg = self.config
        torch.manual_seed(ctx.seed)
        self.data = load_sequence_data(cfg)
        self.model = build_sequence_classifier(cfg, self.data).to(ctx.device)
        self.batches = EpochBatches(len(self.data.train), cfg.batch, cfg.seed, ctx.dist)
        self.device = ctx.device
        self.best_val_loss, self.best_iteration = float("inf"), -1
        self.best_weights: Optional[Dict[str, Tensor]] = None

    def batch(self, iteration: int, ctx: RunContext) -> Tuple[int, IrregularBatch]:
        idx = self.batches.indices(iteration).tolist()
        return iteration, _collate([self.data.train[i] for i in idx], self.config.per_sample).to(self.device)

    def training_loss(self, batch: Tuple[int, IrregularBatch]) -> StepOutput:
        iteration, b = batch
        cfg, net, y = self.config, self.model, _labels(b)
        if isinstance(net, LatentODEClassifier):
            out = net.latent(b.times, b.values, b.mask, n_samples=cfg.samples, lengths=b.lengths)
            log_lik = masked_gaussian_log_likelihood(b.values, out.mean, cfg.obs_std, b.mask)  # [K, B]
            n_obs = b.mask.sum(dim=(1, 2)).clamp(min=1)
            kl = kl_normal_standard(out.q_mean, out.q_std)
            beta = kl_weight(iteration, cfg.kl_warmup, cfg.kl_rate)
            bound = elbo(log_lik / n_obs, kl / n_obs, beta)
            logits = net.classifier(out.z0)  # [K, B, C]
            ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.repeat(cfg.samples))
            loss = -bound + cfg.ce_weight * ce
            acc = (logits.detach().mean(0).argmax(-1) == y).float().mean()
            return StepOutput(
                loss,
                dict(
                    loss=loss.detach(),
                    ce=ce.detach(),
                    elbo_per_value=bound.detach(),
                    kl=kl.detach().mean(),
                    kl_weight=beta,
                    accuracy=acc,
                ),
            )
        logits = _forward(net, b)
        ce = F.cross_entropy(logits, y)
        return StepOutput(
            ce, dict(loss=ce.detach(), ce=ce.detach(), accuracy=(logits.detach().argmax(-1) == y).float().mean())
        )

    def evaluate(self, series: List[Series], chunk: int = 100) -> Tuple[Tensor, Tensor, Tensor]:
        """(per-series cross-entropy, predicted classes, true classes)."""
        try:
            return evaluate_sequences(self.model, series, self.device, chunk, self.config.per_sample)
        finally:
            self.model.train()

    def validate(self, ctx: RunContext) -> Dict[str, float]:
        ce, pred, y = self.evaluate(self.data.val)
        loss = float(ce.mean())
        if loss < self.best_val_loss:  # the weights that are tested at the end
            self.best_val_loss, self.best_iteration = loss, ctx.iteration
            self.best_weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        return dict(val_loss=loss, val_accuracy=float((pred == y).float().mean()))

    def state_dict(self) -> Dict[str, Any]:
        return dict(
            best_val_loss=self.best_val_loss,
            best_iteration=self.best_iteration,
            best_weights=self.best_weights,
            budget=self.budget,
        )

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.best_val_loss = float(state.get("best_val_loss", float("inf")))
        self.best_iteration = int(state.get("best_iteration", -1))
        self.best_weights = state.get("best_weights")
        kind = str(state.get("budget", self.budget)).split(":")[0]  # a resumed run keeps how it was set
        self.budget = f"{kind}: {self.config.iterations} iterations"

    def finish(self, ctx: RunContext) -> Dict[str, Any]:
        cfg, data = self.config, self.data
        if self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)
        ce, pred, y = self.evaluate(data.test)
        per_epoch = self.batches.per_epoch
        wall = ctx.history[-1].get("wall_time", float("nan")) if ctx.history else float("nan")
        summary: Dict[str, Any] = dict(
            test_accuracy=float((pred == y).float().mean()),
            test_loss=float(ce.mean()),
            parameters=sum(p.numel() for p in self.model.parameters()),
            iterations_per_epoch=per_epoch,
            epochs_trained=(ctx.iteration + 1) / per_epoch,
            seconds_per_epoch=wall / (ctx.iteration + 1) * per_epoch,
            **data_and_test_report(cfg, data, y, pred),
            budget=self.budget,
            tested_weights=f"lowest val_loss (iteration {self.best_iteration})"
            if self.best_weights is not None
            else "last iteration",
        )
        val_acc = [float(r["val_accuracy"]) for r in ctx.history if "val_accuracy" in r]
        warning = chance_warning(
            val_acc,
            [_class_of(s) for s in data.val],
            summary["test_accuracy"],
            y.tolist(),
            len(data.classes),
        )
        if warning is not None:
            summary["warning"] = warning
        return summary


def train_sequence_classify(
    cfg: SequenceClassifyConfig,
    out: Optional[Path],
    progress: bool = True,
    resume: bool = False,
    tensorboard: bool = False,
) -> Dict[str, Any]:
    """Train (epochs, or the auto budget, converted to iterations) and return summary.json's content
    (random-cde: its closed-form fit, tasks.sequence_random)."""
    if cfg.model == "random-cde":
        from ..models.random_cde import RandomCDEClassifier
        from ..training.run_folder import check_run_folder
        from .sequence_random import fit_random_cde

        if resume:
            raise ValueError("random-cde runs are fitted in one go; there is nothing to resume (drop --resume)")
        cfg.validate()
        if out is not None:
            check_run_folder(Path(out))  # before any work
        torch.manual_seed(cfg.seed)
        data = load_sequence_data(cfg)  # float32 as every series model (features in float64): evaluate sees the same
        model = build_sequence_classifier(cfg, data)
        assert isinstance(model, RandomCDEClassifier)
        return fit_random_cde(cfg, out, data, model)
    return train("sequence-classify", cfg, out, progress, resume, tensorboard)
