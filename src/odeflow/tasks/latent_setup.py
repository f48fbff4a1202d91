"""The latent-ODE task's pieces that need no training engine: data sets, models, one batch's
loss and metrics, evaluation on a fixed test set (Rubanova et al. 2019; seed 002 eq. 32).

Tasks (on the union-of-times grid of a batch, or with `per_sample` each series on its own times
and adaptive steps, `data.irregular.collate_rows`):
  interpolation: the encoder sees a random `fraction` of each series' points; the held-out
                 points are scored.
  extrapolation: the encoder sees (a `fraction` of) the points before `t_split`; every point
                 after it is scored.
Training fits every point of the series (the encoder still sees only its input mask); test
MSE is over the scored points only, from the posterior-mean prediction for the latent ODE
(mean of the decoded trajectories of several z0 samples).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from ..data import (
    IrregularBatch,
    Normalizer,
    Series,
    collate,
    collate_rows,
    load_co2_windows,
    load_long_csv,
    load_physionet,
    make_periodic,
    split_extrapolation,
    split_interpolation,
)
from ..gradients import OptimizeDiscretize
from ..models import (
    LatentODE,
    RecurrentRegressor,
    disc_opt,
    elbo,
    iwae,
    kl_normal_standard,
    make_ode_rnn,
    make_rnn_dt,
    masked_gaussian_log_likelihood,
    masked_mse,
    opt_disc,
)
from ..models.elbo import poisson_log_likelihood
from ..models.ode_solver import ODESolver
from ..solvers.stepping import Adaptive
from .latent_config import LatentSettings


@dataclass
class LatentData:
    train: List[Series]
    test: List[Series]
    variables: List[str]
    t_split: float
    normalizer: Optional[Normalizer] = None
    extra: Dict[str, float] = field(default_factory=dict)
    time_scale: float = 1.0  # model time = (data time - time_origin) * time_scale
    time_origin: float = 0.0


def _split_records(series: List[Series], test_fraction: float, seed: int) -> Tuple[List[Series], List[Series]]:
    if len(series) < 2:
        raise ValueError(f"need at least 2 series to hold some out for testing; got {len(series)}")
    perm = torch.randperm(len(series), generator=torch.Generator().manual_seed(seed)).tolist()
    n_test = min(len(series) - 1, max(1, round(test_fraction * len(series))))
    return [series[i] for i in perm[n_test:]], [series[i] for i in perm[:n_test]]


def _scale(series: List[Series], factor: float) -> List[Series]:
    return [Series(s.times * factor, s.values, s.mask, s.label, s.name) for s in series]


def load_data(s: LatentSettings, seed: int, dtype: torch.dtype = torch.float32) -> LatentData:
    """Train and test series (normalised, times scaled) and the extrapolation boundary."""
    normalizer, origin = None, 0.0
    if s.data == "periodic":
        every = make_periodic(s.n_train + s.n_test, n_points=s.n_points, noise=s.noise, seed=seed, dtype=dtype)
        train, test, variables, scale = every[: s.n_train], every[s.n_train :], ["x"], 1.0
    elif s.data == "co2":
        train, test = load_co2_windows(seed=seed, dtype=dtype)
        variables, scale = ["co2"], 1.0
    else:
        if s.data == "physionet":
            series, variables = load_physionet(s.data_dir, s.quantization, max_records=s.max_records, dtype=dtype)
            scale = 1.0 / 48.0
        else:
            # float64 until times are shifted to start at 0 and scaled: absolute times such as
            # Unix seconds (1.7e9, float32 spacing 128 s) would merge in float32
            series, variables = load_long_csv(Path(s.data), dtype=torch.float64)
            span = max(float(x.times[-1] - x.times[0]) for x in series)
            scale = 1.0 / span if span > 0 else 1.0
            origin = min(float(x.times[0]) for x in series)
            series = [Series(x.times - origin, x.values, x.mask, x.label, x.name) for x in series]
        train, test = _split_records(series, s.test_fraction, seed)
        normalizer = Normalizer.fit(train)
        train, test = normalizer.apply(train), normalizer.apply(test)
    scale = s.time_scale if s.time_scale is not None else scale
    if scale != 1.0:
        train, test = _scale(train, scale), _scale(test, scale)
    train, test = _cast(train, dtype), _cast(test, dtype)
    t_lo = min(float(x.times[0]) for x in train)
    t_hi = max(float(x.times[-1]) for x in train)
    t_split = s.t_split if s.t_split is not None else 0.5 * (t_lo + t_hi)
    return LatentData(train, test, variables, t_split, normalizer, time_scale=scale, time_origin=origin)


def _cast(series: List[Series], dtype: torch.dtype) -> List[Series]:
    return [Series(x.times.to(dtype), x.values.to(dtype), x.mask.to(dtype), x.label, x.name) for x in series]


def build_model(s: LatentSettings, input_dim: int) -> nn.Module:
    """The model named by s.model with the solvers of s.mode (Disc-Opt: euler encoder and
    s.method decoder on fixed steps of at most s.step_size, which every gap between grid times
    also splits; Opt-Disc: the adjoint with the same euler encoder steps and a dopri5 decoder).
    With s.per_sample every ODE is dopri5 at s.rtol/s.atol, per row (backprop, or the adjoint
    with seminorms in Opt-Disc)."""
    if s.per_sample:  # every series on its own adaptive steps
        adaptive = Adaptive(s.rtol, s.atol)
        enc = dec = (
            ODESolver("dopri5", adaptive, OptimizeDiscretize(seminorm=True))
            if s.mode == "opt-disc"
            else ODESolver("dopri5", adaptive)
        )
    elif s.mode == "disc-opt":
        enc, dec = disc_opt("euler", s.step_size), disc_opt(s.method, s.step_size)
    else:
        enc, dec = opt_disc("euler", h=s.step_size), opt_disc("dopri5", s.rtol, s.atol)
    if s.model == "latent-ode":
        return LatentODE(input_dim, s.latent_dim, s.hidden, s.field_hidden, s.encoder, s.poisson, dec, enc)
    if s.model == "ode-rnn":
        return make_ode_rnn(input_dim, s.hidden, s.field_hidden, enc)
    return make_rnn_dt(input_dim, s.hidden)


@dataclass
class TaskBatch:
    """A collated batch with the encoder's input mask and the scored target mask."""

    batch: IrregularBatch
    inp: Tensor
    target: Tensor


def make_task_batch(
    series: List[Series],
    s: LatentSettings,
    t_split: float,
    generator: torch.Generator,
    device: Optional[torch.device] = None,
    per_sample: Optional[bool] = None,
) -> TaskBatch:
    """The batch on its union grid or (``per_sample``, default s.per_sample) each series on its
    own times, with the input and target masks of the task."""
    b = collate_rows(series) if (s.per_sample if per_sample is None else per_sample) else collate(series)
    if s.task_kind == "interpolation":
        inp, target = split_interpolation(b.mask, s.fraction, generator)
        if s.fraction == 1.0:
            target = b.mask  # nothing held out: score the reconstruction
    else:
        inp, target = split_extrapolation(b.times, b.mask, t_split, s.fraction, generator)
    if device is not None:
        b, inp, target = b.to(device), inp.to(device), target.to(device)
    return TaskBatch(b, inp, target)


def _encoder_view(tb: TaskBatch) -> Tuple[Tensor, Tensor, Tensor, Optional[Tensor]]:
    """The grid times where some series has an input value, with those values and masks; per
    row (times [B, N]): each series' own input times first (`input_rows`), with their lengths."""
    if tb.batch.lengths is not None:
        return input_rows(tb.batch.times, tb.batch.values, tb.inp)
    seen = tb.inp.sum(dim=(0, 2)) > 0
    return tb.batch.times[seen], tb.batch.values[:, seen], tb.inp[:, seen], None


def input_rows(times: Tensor, values: Tensor, inp: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Each row's input points moved to its front in time order (times [B, N], values and input
    mask [B, N, D]); the rest padded after the row's last input time; lengths [B] (a row without
    an input keeps its first time, unobserved)."""
    seen = inp.sum(-1) > 0  # [B, N]
    N = times.shape[1]
    order = torch.sort((~seen).to(torch.int64) * N + torch.arange(N, device=times.device), dim=1).indices
    lengths = seen.sum(1).clamp_min(1)
    t = times.gather(1, order)
    last = t.gather(1, (lengths - 1).unsqueeze(1))
    k = (torch.arange(N, device=times.device).unsqueeze(0) - lengths.unsqueeze(1) + 1).clamp_min(0)
    gap = 1e-5 * torch.maximum((last - t[:, :1]).abs(), torch.maximum(last.abs(), torch.ones_like(last)))
    t = torch.where(k > 0, last + gap * k, t)
    cols = order.unsqueeze(-1).expand_as(values)
    return t, values.gather(1, cols), inp.gather(1, cols), lengths


def predict(model: nn.Module, tb: TaskBatch, n_samples: int = 1, sample: bool = True):
    """Predictions [K, B, T, D] on the batch grid (K = 1 for the recurrent models) and the
    latent output (None for them)."""
    b = tb.batch
    if isinstance(model, LatentODE):
        times, values, mask, lengths = _encoder_view(tb)
        out = model(
            times,
            values,
            mask,
            n_samples=n_samples,
            predict_times=b.times,
            sample=sample,
            lengths=lengths,
            predict_lengths=b.lengths,
        )
        return out.mean, out
    if b.lengths is not None:
        return model(b.times, b.values, tb.inp, b.lengths)[None], None
    return model(b.times, b.values, tb.inp)[None], None


def training_loss(
    model: nn.Module, tb: TaskBatch, s: LatentSettings, kl_beta: float
) -> Tuple[Tensor, Dict[str, float]]:
    """-ELBO (or -IWAE) per series for the latent ODE, the Gaussian NLL per series otherwise;
    both fit every observed point of the batch (b.mask)."""
    mask = tb.batch.mask
    pred, out = predict(model, tb, s.samples)
    log_lik = masked_gaussian_log_likelihood(tb.batch.values, pred, s.obs_std, mask)  # [K, B]
    metrics = {"mse": float(masked_mse(tb.batch.values, pred.detach().mean(0), mask))}
    if out is None:
        loss = -log_lik.mean()
        metrics["nll"] = float(loss.detach())
        return loss, metrics
    if out.log_intensity is not None:
        log_lik = log_lik + poisson_log_likelihood(out.log_intensity, out.integral, mask)
    kl = kl_normal_standard(out.q_mean, out.q_std)
    bound = iwae(log_lik, out.z0, out.q_mean, out.q_std, kl_beta) if s.iwae else elbo(log_lik, kl, kl_beta)
    metrics.update(
        elbo=float(elbo(log_lik.detach(), kl.detach(), 1.0)), kl=float(kl.detach().mean()), kl_weight=kl_beta
    )
    return -bound, metrics


@torch.no_grad()
def evaluate(
    model: nn.Module,
    series: List[Series],
    s: LatentSettings,
    t_split: float,
    seed: int,
    batch_size: int = 100,
    device: Optional[torch.device] = None,
) -> Dict[str, float]:
    """Test metrics over all `series` with fixed input/target masks (seeded): mse on the scored
    points, nll per scored value (Gaussian with obs_std), and for the latent ODE the ELBO per
    series (all points, KL weight 1)."""
    g = torch.Generator().manual_seed(seed + 7919)
    sq = count = nll = 0.0
    elbo_sum, n_series = 0.0, 0
    for start in range(0, len(series), batch_size):
        tb = make_task_batch(series[start : start + batch_size], s, t_split, g, device)
        pred, out = predict(model, tb, s.eval_samples)
        mean = pred.mean(0)
        x = torch.where(tb.target > 0, tb.batch.values, mean)
        sq += float(((x - mean) ** 2 * tb.target).sum())
        count += float(tb.target.sum())
        nll -= float(masked_gaussian_log_likelihood(tb.batch.values, mean, s.obs_std, tb.target).sum())
        if out is not None:
            log_lik = masked_gaussian_log_likelihood(tb.batch.values, pred, s.obs_std, tb.batch.mask)
            if out.log_intensity is not None:
                log_lik = log_lik + poisson_log_likelihood(out.log_intensity, out.integral, tb.batch.mask)
            kl = kl_normal_standard(out.q_mean, out.q_std)
            elbo_sum += float((log_lik.mean(0) - kl).sum())
        n_series += tb.batch.values.shape[0]
    if count == 0:
        raise ValueError("the test split scores no point: check --fraction / --t-split against the data's times")
    result = {"mse": sq / count, "nll": nll / count}
    if isinstance(model, LatentODE):
        result["elbo"] = elbo_sum / n_series
    return result


@torch.no_grad()
def summary_features(
    model: nn.Module, series: List[Series], s: LatentSettings, t_split: float, seed: int, batch_size: int = 100
) -> Tensor:
    """One vector per series for a downstream classifier: the posterior mean of z0 (latent ODE)
    or the last hidden state (ODE-RNN, RNN-Δt), from the encoder's input points."""
    g = torch.Generator().manual_seed(seed + 104729)
    feats = []
    for start in range(0, len(series), batch_size):
        tb = make_task_batch(series[start : start + batch_size], s, t_split, g)
        if isinstance(model, LatentODE):
            times, values, mask, lengths = _encoder_view(tb)
            feats.append(model.posterior(times, values, mask, tb.batch.times[..., 0], lengths)[0])
        else:
            assert isinstance(model, RecurrentRegressor)
            feats.append(model.encode(tb.batch.times, tb.batch.values, tb.inp, tb.batch.lengths))
    return torch.cat(feats)


def mortality_auc(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor) -> Optional[float]:
    """Test ROC AUC of a logistic regression on the features (None unless both classes occur
    in the training and the test labels)."""
    ok_tr, ok_te = ~torch.isnan(train_y), ~torch.isnan(test_y)
    ytr, yte = train_y[ok_tr], test_y[ok_te]
    if len(torch.unique(ytr)) < 2 or len(torch.unique(yte)) < 2:
        return None
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import roc_auc_score
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("mortality AUC needs scikit-learn: pip install 'odeflow[latent]'") from e
    clf = LogisticRegression(max_iter=1000).fit(train_x[ok_tr].double().numpy(), ytr.numpy())
    return float(roc_auc_score(yte.numpy(), clf.predict_proba(test_x[ok_te].double().numpy())[:, 1]))
