"""Sparse polynomial ODEs fitted to the observations themselves, and scored there.

The SINDy regression sees the derivatives of a fitted field, whose own smooth error (a few percent)
limits what it can tell apart: a true term carrying ~3% of a derivative (Lorenz's −y in ẏ) looks like
that error, and the coefficients inherit it. Here a candidate support is instead fitted as an ODE,
dx/dt = Ξ Θ(x), to the noisy observations: each observation x_j is predicted from the learned
(denoised) state `horizon` observations earlier in its trajectory by rk4, and the coefficients
minimise Σ_j Σ_i ((x̂_ji − x_ji)/s_i)² by Levenberg–Marquardt (Jacobian by forward mode, torch.func).
The score is the Bayesian information criterion on those prediction residuals,

    BIC = Σ_i N log(RSS_i / N) + k log N,

N predicted observations, RSS_i the squared residuals of variable i (its own noise level), k the
number of nonzero coefficients. Simulating candidate models and ranking them by an information
criterion on the trajectories is the model-selection recipe of Mangan, Kutz, Brunton & Proctor,
"Model selection for dynamical systems via sparse regression and information criteria", Proc. R.
Soc. A 473 (2017); the multiple-shooting prediction from learned states is this package's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from .inputs import InputSignal
from .library import Library, as_library, monomials
from .rk4 import rk4_step
from .sparse_field import PolynomialColumns

FAST = True  # False: the reference computations (Library.evaluate fields, one full least squares per predicted BIC)

__all__ = ["Segments", "segments_of", "SparseModel", "fit_on_observations", "predicted_bics", "monomials", "rank_of"]


@dataclass
class Segments:
    """Multiple shooting on the observations: each trajectory cut into consecutive segments of about
    `length` observations; segment s starts from its own state z_s (fitted with the coefficients) at
    its first observation and is integrated through the others, so every observation is predicted
    exactly once and no fitted-field state biases the comparison."""

    z0: Tensor  # [S, d] initial guess of each segment's start state (learned state or observation)
    dt: Tensor  # [L - 1, S, 1] interval lengths along each segment (0 past its end)
    index: Tensor  # [L, S] row of x observed at each position (-1 past the segment's end)
    target: Tensor  # [N, d] observations, in the order of `index`'s valid entries (position-major)
    scale: Tensor  # [d] data std per variable
    block: np.ndarray  # [N] time-window label (5 per trajectory), for block resampling
    substeps: int  # rk4 steps per observation interval
    weight: Optional[Tensor] = None  # [N, d] residual weights 1/σ (odeflow.discover.noise_model); None: 1/scale
    inputs: Optional[Tensor] = None  # [L - 1, substeps, 3, S, p] control inputs at each rk4 step's start, middle, end

    @property
    def w(self) -> Tensor:
        """[N, d] or [d]: what a residual x̂ − x is multiplied by."""
        return 1.0 / self.scale if self.weight is None else self.weight

    @property
    def rows(self) -> Tensor:
        """[N] the observation row of each target (position-major, as `target`)."""
        return self.index[self.valid]

    def with_weights(self, weight: Union[Tensor, np.ndarray, None]) -> Segments:
        """The same segments with residual weights [N, d] (None: back to 1/scale)."""
        return replace(self, weight=None if weight is None else torch.as_tensor(weight, dtype=torch.float64))

    @property
    def valid(self) -> Tensor:
        return self.index >= 0

    @property
    def segment(self) -> Tensor:
        """[N] the segment of each target row."""
        cols = torch.arange(self.index.shape[1]).expand_as(self.index)
        return cols[self.valid]


def segments_of(
    t: Tensor,
    x: Tensor,
    trajectory: Tensor,
    guess: Optional[Tensor] = None,
    length: int = 10,
    substeps: int = 2,
    blocks: int = 5,
    signal: Optional[InputSignal] = None,
) -> Segments:
    """Segments over the observations t [n], x [n, d], trajectory [n] (rows of a trajectory
    contiguous, times increasing). guess [n, d]: start-state guesses per row (default x itself,
    e.g. the neural fit's learned states where there are some). A last piece shorter than length/2
    joins the segment before it. signal: the control inputs u(t), if any (odeflow.discover.inputs)."""
    t, x = t.to(torch.float64), x.to(torch.float64)
    guess = x if guess is None else guess.to(torch.float64)
    pieces, block = [], np.zeros(t.shape[0], dtype=np.int64)
    for k in torch.unique(trajectory).tolist():
        rows = (trajectory == k).nonzero().flatten().tolist()
        cuts = list(range(0, len(rows), length))
        if len(cuts) > 1 and len(rows) - cuts[-1] < max(2, length // 2):
            cuts.pop()
        for a, b in zip(cuts, cuts[1:] + [len(rows)]):
            pieces.append(rows[a:b])
        tk = t[rows]
        lo, hi = float(tk[0]), float(tk[-1])
        pos = np.minimum((blocks * (tk.numpy() - lo) / max(hi - lo, 1e-300)).astype(np.int64), blocks - 1)
        block[rows] = k * blocks + pos
    longest = max(len(p) for p in pieces)
    index = torch.full((longest, len(pieces)), -1, dtype=torch.long)
    for s, p in enumerate(pieces):
        index[: len(p), s] = torch.tensor(p)
    valid = index >= 0
    safe = index.clamp_min(0)
    dt = torch.where(valid[1:], t[safe[1:]] - t[safe[:-1]], torch.zeros(()).double()).unsqueeze(-1)
    rows = index[valid]  # position-major order
    inputs = None
    if signal is not None and len(index) > 1:
        seg_traj = trajectory[index[0]].expand(len(index) - 1, -1)  # [L - 1, S]
        st = signal.stages(t[safe[:-1]], dt.squeeze(-1), substeps, seg_traj)  # [substeps, 3, (L - 1) S, p]
        inputs = st.view(substeps, 3, len(index) - 1, len(pieces), -1).permute(2, 0, 1, 3, 4).contiguous()
    return Segments(
        guess[index[0]].clone(),
        dt,
        index,
        x[rows],
        x.std(dim=0).clamp_min(1e-12),
        block[rows.numpy()],
        substeps,
        inputs=inputs,
    )


class SparseModel:
    """dx/dt = Ξ Θ(x, u) with Ξ [d, m] nonzero on `support` only; the free coefficients are a vector.
    library: an odeflow.discover.library.Library, or exponent tuples of a polynomial one."""

    def __init__(self, library: Union[Library, Sequence[Sequence[int]]], support: np.ndarray) -> None:
        self.support = np.asarray(support, dtype=bool)  # [d, m]
        self.cols = np.flatnonzero(self.support.any(axis=0))
        self.library = as_library(library)
        rows, cols = np.nonzero(self.support[:, self.cols])
        d, mc = self.support.shape[0], len(self.cols)
        place = torch.zeros(mc * d, len(rows), dtype=torch.float64)  # vec(Ξᵀ restricted) = place @ θ
        place[torch.as_tensor(cols * d + rows), torch.arange(len(rows))] = 1.0
        self.place, self.d, self.mc = place, d, mc
        self.rows, self.cols_in = rows, cols
        # a support of polynomial columns only: evaluated by PolynomialColumns (few tensor ops)
        polynomial = len(self.cols) > 0 and bool((self.cols < len(self.library.powers)).all())
        self.fast = PolynomialColumns([self.library.powers[c] for c in self.cols]) if polynomial and FAST else None

    @property
    def size(self) -> int:
        return int(self.support.sum())

    def to_matrix(self, theta: Tensor) -> np.ndarray:
        out = np.zeros(self.support.shape)
        out[self.rows, self.cols[self.cols_in]] = theta.detach().numpy()
        return out

    def from_matrix(self, xi: np.ndarray) -> Tensor:
        return torch.as_tensor(np.asarray(xi)[self.rows, self.cols[self.cols_in]], dtype=torch.float64)

    def field(self, w: Tensor, z: Tensor, u: Optional[Tensor] = None) -> Tensor:
        """f(z, u) for z [B, S, d], inputs u [S, p] (or None) and coefficient matrices w [B, mc, d]."""
        v = z if u is None else torch.cat([z, u.expand(z.shape[0], -1, -1)], dim=-1)
        if self.fast is not None:
            return torch.bmm(self.fast(v).view(z.shape[0], -1, self.mc), w)
        theta = self.library.evaluate(v.reshape(-1, v.shape[-1]), self.cols).view(z.shape[0], z.shape[1], self.mc)
        return torch.bmm(theta, w)

    def residuals(self, params: Tensor, seg: Segments) -> Tensor:
        """(x̂ − x) w [N, d] (or [B, N, d] for params [B, ·]; w = seg.w: 1/s or 1/σ); params = (free coefficients, then the
        segments' start states)."""
        batched = params.dim() == 2
        p = params if batched else params.unsqueeze(0)
        k = len(self.rows)
        w = (p[:, :k] @ self.place.T).view(p.shape[0], self.mc, self.d)  # explicit: mc may be 0
        z = p[:, k:].reshape(p.shape[0], -1, self.d)
        preds = [z]
        for i in range(seg.dt.shape[0]):
            h = seg.dt[i] / seg.substeps  # [S, 1], broadcast over the batch
            for j in range(seg.substeps):
                u = (None, None, None) if seg.inputs is None else seg.inputs[i, j]
                z = rk4_step(lambda z_, u_: self.field(w, z_, u_), z, h, u)
            preds.append(z)
        out = torch.stack(preds, dim=1)[:, seg.valid]  # position-major, as seg.target
        res = (out - seg.target) * seg.w
        return res if batched else res[0]


def residuals_no_grad(model: SparseModel, params: Tensor, seg: Segments) -> Tensor:
    """model.residuals(params, seg) without autograd: integrated in numpy (the same rk4 arithmetic)
    when the support is polynomial and there are no control inputs, else by model.residuals."""
    if model.fast is None or seg.inputs is not None:
        with torch.no_grad():
            return model.residuals(params, seg)
    batched = params.dim() == 2
    p = (params if batched else params.unsqueeze(0)).detach().numpy()
    k = len(model.rows)
    w = (p[:, :k] @ model.place.numpy().T).reshape(p.shape[0], model.mc, model.d)
    z = p[:, k:].reshape(p.shape[0], -1, model.d)
    cols = model.fast

    def f(z_: np.ndarray) -> np.ndarray:
        return np.matmul(cols.numpy(z_), w)

    preds = [z]
    dt = seg.dt.numpy()
    with np.errstate(all="ignore"):  # a diverging model: inf/nan, as in torch (its BIC is inf)
        for i in range(dt.shape[0]):
            h = dt[i] / seg.substeps  # [S, 1]
            half, sixth = 0.5 * h, h / 6  # rk4_step's arithmetic, in its order
            for _ in range(seg.substeps):
                k1 = f(z)
                k2 = f(z + half * k1)
                k3 = f(z + half * k2)
                k4 = f(z + h * k3)
                z = z + sixth * (k1 + 2 * k2 + 2 * k3 + k4)
            preds.append(z)
        out = np.stack(preds, axis=1)[:, seg.valid.numpy()]
        res = (out - seg.target.numpy()) * seg.w.numpy()
    got = torch.from_numpy(res)
    return got if batched else got[0]


def jacobian(model: SparseModel, params: Tensor, seg: Segments, rel_step: float = 1e-6) -> Tensor:
    """∂ residuals / ∂ (coefficients, segment starts) [N d, k + S d] by central differences, all
    directions in one batched integration (as MINPACK's lmdif, but central: error O(h²) ~ 1e-12
    relative). A segment's start moves only that segment's predictions, so one direction per state
    dimension, shifting every start at once, gives all the start columns (k + d directions, not
    k + S d)."""
    k, d = model.size, model.d
    z = params[k:].view(-1, d)
    n_seg = z.shape[0]
    base = torch.cat([params[:k], params.new_zeros(d)])
    scale = torch.cat([params[:k].abs().clamp_min(1e-3), z.abs().mean(dim=0).clamp_min(1e-3)])
    step = rel_step * scale
    eye = torch.diag(step)
    probe = torch.cat([base + eye, base - eye])  # [2 (k + d), k + d]
    full = torch.cat([probe[:, :k], (z.unsqueeze(0) + probe[:, k:].unsqueeze(1)).reshape(len(probe), -1)], dim=1)
    r = residuals_no_grad(model, full, seg) if FAST else model.residuals(full, seg).detach()  # [2 (k + d), N, d]
    m = k + d
    jac = ((r[:m] - r[m:]) / (2 * step).view(-1, 1, 1)).reshape(m, -1).T  # [N d, k + d]
    n = seg.target.shape[0]
    shift = jac[:, k:].reshape(n, d, d)  # [row, variable, start dimension]
    starts = jac.new_zeros(n, d, n_seg, d)
    starts[torch.arange(n), :, seg.segment, :] = shift
    return torch.cat([jac[:, :k], starts.reshape(n * d, n_seg * d)], dim=1)


@dataclass
class ObservationFit:
    support: np.ndarray  # [d, m]
    coefficients: np.ndarray  # [d, m]
    residuals: np.ndarray  # [N, d], scaled
    bic: float
    stderr: np.ndarray  # [d, m]: Gauss–Newton standard errors (0 off the support)
    iterations: int
    starts: Tensor  # [S, d] the fitted segment start states
    converged: bool = True  # False: Levenberg–Marquardt stopped at max_iter still improving

    def raw_residuals(self, seg: Segments) -> Tuple[np.ndarray, np.ndarray]:
        """(observation − prediction [N, d], prediction [N, d]) in data units (the weights undone)."""
        w = np.broadcast_to(seg.w.detach().numpy(), self.residuals.shape)
        pred_minus_obs = self.residuals / w
        return -pred_minus_obs, seg.target.detach().numpy() + pred_minus_obs


def bic_of(residuals: np.ndarray, k: int, weights: Optional[np.ndarray] = None) -> float:
    """Σ_i N log(RSS_i / N) + k log N over residuals [N, d] (weights [N]: resampling counts)."""
    w = np.ones(residuals.shape[0]) if weights is None else weights
    n = float(w.sum())
    with np.errstate(invalid="ignore", over="ignore"):  # inf × 0 weight: still a diverging model
        rss = (w[:, None] * residuals**2).sum(axis=0)
    if not np.isfinite(rss).all():
        return float("inf")
    return float(n * np.log(np.maximum(rss, 1e-300) / n).sum() + k * np.log(n))


def fit_on_observations(
    powers: Union[Library, Sequence[Sequence[int]]],
    support: np.ndarray,
    start: np.ndarray,
    seg: Segments,
    z0: Optional[Tensor] = None,
    max_iter: int = 20,
    tol: float = 1e-6,
) -> ObservationFit:
    """Levenberg–Marquardt (Marquardt's diagonal scaling) on the free coefficients of `support` and
    the segments' start states, from the coefficient matrix `start` [d, m] and z0 (default seg.z0).
    A model whose predictions blow up scores BIC = inf."""
    model = SparseModel(powers, support)
    k = model.size
    params = torch.cat([model.from_matrix(start), (seg.z0 if z0 is None else z0).reshape(-1)])
    n = seg.target.shape[0]

    def res(p: Tensor) -> Tensor:
        if FAST:
            return residuals_no_grad(model, p, seg).reshape(-1)
        return model.residuals(p, seg).reshape(-1)

    with torch.no_grad():
        r = res(params)
    cost = float(r.pow(2).sum()) if torch.isfinite(r).all() else float("inf")
    lam, it, done = 1e-3, 0, False
    jac = None
    converged = True
    while it < max_iter:
        it += 1
        if not np.isfinite(cost):
            break
        jac = jacobian(model, params, seg)  # [N d, k + S d]
        if not torch.isfinite(jac).all():
            cost = float("inf")
            break
        g = jac.T @ jac
        grad = jac.T @ r
        diag = torch.diag(g).clamp_min(1e-12)
        improved = False
        for _ in range(10):
            try:
                step = torch.linalg.solve(g + lam * torch.diag(diag), -grad)
            except RuntimeError:
                lam *= 10
                continue
            trial = params + step
            with torch.no_grad():
                r_new = res(trial)
            new = float(r_new.pow(2).sum()) if torch.isfinite(r_new).all() else float("inf")
            if new < cost:
                improved = True
                done = cost - new < tol * cost
                params, r, cost, lam = trial, r_new, new, max(lam / 3, 1e-9)
                break
            lam *= 4
        if not improved or done:
            break
    else:
        converged = False
    finite = np.isfinite(cost)
    resid = r.view(n, -1).detach().numpy() if finite else np.full((n, model.d), np.inf)
    stderr = np.zeros(support.shape)
    if jac is not None and finite and k:
        # per-variable noise variance, unbiased: each variable's residuals pay for its share of the
        # k coefficients and S·d segment starts (the ML estimate RSS/N made the intervals narrow:
        # 89% coverage of nominal 95% on true supports of the benchmark families, 93% with this)
        dof = max(n - (len(params) / model.d), 1.0)
        sigma2 = np.maximum((resid**2).sum(axis=0) / dof, 1e-300)
        jw = jac.detach().numpy().reshape(n, model.d, -1) / np.sqrt(sigma2)[None, :, None]
        jw = jw.reshape(n * model.d, -1)
        cov = np.linalg.pinv(jw.T @ jw)
        stderr[model.rows, model.cols[model.cols_in]] = np.sqrt(np.maximum(np.diag(cov)[:k], 0.0))
    return ObservationFit(
        model.support,
        model.to_matrix(params[:k]),
        resid,
        bic_of(resid, k),
        stderr,
        it,
        params[k:].detach().view(-1, model.d),
        converged and bool(finite),
    )


def least_squares_start(theta_lib: np.ndarray, xdot: np.ndarray, support: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Least squares on the samples (the regression's coefficients) for equations `rows` [d] (bool),
    zeros elsewhere: the Levenberg–Marquardt start of a move that changed those equations."""
    out = np.zeros(support.shape)
    for i in np.flatnonzero(rows):
        if support[i].any():
            out[i, support[i]] = np.linalg.lstsq(theta_lib[:, support[i]], xdot[:, i], rcond=None)[0]
    return out


def predicted_bics(
    powers: Union[Library, Sequence[Sequence[int]]],
    current: ObservationFit,
    candidates: Sequence[np.ndarray],
    seg: Segments,
) -> List[float]:
    """BIC of each candidate support [d, m] as predicted by one Gauss–Newton step from the current
    fit (the score-test idea): one Jacobian at the current parameters, in the union of all the
    supports, then per candidate a linear least-squares problem with the candidate's coefficients and
    all segment starts free and the current coefficients it drops set to 0. Exact for a model linear
    in its parameters; used to pick the few moves worth a full fit."""
    union = np.asarray(current.support).copy()
    for c in candidates:
        union |= c
    model = SparseModel(powers, union)
    k = model.size
    params = torch.cat([model.from_matrix(current.coefficients), current.starts.reshape(-1)])
    jac = jacobian(model, params, seg).detach().numpy()
    r = current.residuals.reshape(-1)
    n = current.residuals.shape[0]
    position = {(int(i), int(model.cols[c])): q for q, (i, c) in enumerate(zip(model.rows, model.cols_in))}
    values = params[:k].detach().numpy()
    if not FAST:
        return _predicted_reference(jac, r, n, k, position, values, current.support, candidates)
    bad = ~np.isfinite(jac).all(axis=0)
    if bad[k:].any() or not np.isfinite(r).all():
        return [float("inf")] * len(candidates)  # a diverging model: no linear prediction
    # every candidate frees all segment starts: project them out once (an orthonormal basis of their
    # columns), then each candidate is a small least squares in its own coefficients, whose minimal
    # residual is the full problem's (the residual of a least-squares problem is unique)
    q = _orthonormal_columns(jac[:, k:])
    finite = np.where(bad[None, :k], 0.0, jac[:, :k])
    coef = finite - q @ (q.T @ finite)
    r_perp = r - q @ (q.T @ r)
    out = []
    for cand in candidates:
        free = [position[(int(i), int(j))] for i, j in zip(*np.nonzero(cand))]
        dropped = [q_ for (i, j), q_ in position.items() if current.support[i, j] and not cand[i, j]]
        if bad[free].any() or bad[dropped].any():
            out.append(float("inf"))
            continue
        r0 = r_perp - coef[:, dropped] @ values[dropped] if dropped else r_perp
        a = coef[:, free]
        try:
            delta = np.linalg.lstsq(a, -r0, rcond=None)[0] if free else np.zeros(0)
        except np.linalg.LinAlgError:
            out.append(float("inf"))
            continue
        lin = (r0 + a @ delta).reshape(n, -1)
        out.append(bic_of(lin, len(free)))
    return out


def _predicted_reference(jac, r, n, k, position, values, support, candidates) -> List[float]:
    """predicted_bics' least squares with every segment start column in each candidate's problem."""
    starts = np.arange(k, jac.shape[1])
    out = []
    for cand in candidates:
        free = [position[(int(i), int(j))] for i, j in zip(*np.nonzero(cand))]
        dropped = [q for (i, j), q in position.items() if support[i, j] and not cand[i, j]]
        r0 = r - jac[:, dropped] @ values[dropped] if dropped else r
        cols = np.concatenate([np.asarray(free, dtype=np.int64), starts])
        if not (np.isfinite(r0).all() and np.isfinite(jac[:, cols]).all()):
            out.append(float("inf"))
            continue
        try:
            delta = np.linalg.lstsq(jac[:, cols], -r0, rcond=None)[0]
        except np.linalg.LinAlgError:
            out.append(float("inf"))
            continue
        out.append(bic_of((r0 + jac[:, cols] @ delta).reshape(n, -1), len(free)))
    return out


def _orthonormal_columns(a: np.ndarray, rcond: float = 1e-12) -> np.ndarray:
    """An orthonormal basis [n, r] of the column space of a [n, c] (rank-revealing: singular
    directions below rcond × the largest are dropped, as lstsq's rcond does)."""
    if a.shape[1] == 0:
        return np.zeros((a.shape[0], 0))
    u, s, _ = np.linalg.svd(a, full_matrices=False)
    return u[:, s > rcond * max(s[0], 1e-300)]


def rank_of(support: np.ndarray, extra: Optional[np.ndarray] = None) -> Tuple[int, int]:
    """(terms, non-polynomial terms) of a support [d, m]: the sparsest-within rule's order."""
    return int(support.sum()), 0 if extra is None else int(support[:, extra].sum())
