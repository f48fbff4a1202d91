"""Steps 1-2 of the seed's recipe (seed 002, "Neural ODEs + interpretable models"): fit a neural
ODE to irregular, noisy observations of one or more trajectories, then sample it where the data is.

The field works in standardized coordinates and time, dx/dt = s ⊙ r ⊙ g_θ((x − m)/s) (m, s: the
data's mean and std per variable; r: each variable's RMS rate in units of its std, from secants over a few
observations, so that g's outputs are O(1) whatever the time unit: without it a fast
system such as Lorenz, whose standardized rates are ~10, needs Adam to grow the last layer's weights
tenfold, and the fits ran into the iteration cap); every trajectory shares the one field. Fitting is multiple shooting over
short windows: every training observation j gets a learned state ŝ_j (initialised at the noisy
x_j); from each ŝ_j the ODE is rolled over the next k observation intervals of the same trajectory
and compared with the observations there:

    L = mean_j ‖(ŝ_j − x_j)/s‖² + mean_{j, i=1..k} ‖(Φ_{t_j → t_{j+i}}(ŝ_j) − x_{j+i})/s‖²

All windows are one batch: interval j is mapped to τ ∈ [0, 1] with dz/dτ = Δt_j f(z) (per-row Δt),
classic rk4 with a fixed number of sub-steps (`discover.rk4`, not the solver core: a few hundred small
batched calls per iteration, where a general solver's bookkeeping would dominate). A single long rollout of an
oscillating system is a poor objective (measured: no fit of Lotka–Volterra in 300 iterations);
short windows are well conditioned.

Stopping: a random `validation` fraction of the interior observations is held out. Every
`check_every` iterations each held-out x_v is predicted by rolling the field from the learned state
`val_horizon` observations before it (long enough that field errors, not the noise, dominate);
when that error has not improved for `patience` checks the rate is cut
(×0.3), and below `min_lr` the fit stops and the best checkpoint is kept.

Derivatives handed to SINDy are the learned field itself, not finite differences.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from ..models.timeseries import VectorFieldMLP
from ..solve import solve
from ..solvers.stepping import Adaptive
from .inputs import InputSignal, stages_or_none
from .progress import progress_bar
from .rk4 import rk4_step


@dataclass
class NeuralFitConfig:
    hidden: Sequence[int] = (32, 32)
    activation: str = "tanh"
    iterations: int = 2000  # at most; the fit usually stops earlier (validation, patience)
    lr: float = 1e-2
    min_lr: float = 1e-4  # stop once the plateau cuts would take the rate below this
    window: int = 4  # observation intervals per shooting window
    substeps: Optional[int] = None  # rk4 steps per observation interval; None: from the data (auto_substeps)
    validation: float = 0.15  # fraction of interior observations held out for stopping
    check_every: int = 25  # iterations between validation checks
    patience: int = 4  # checks without improvement before the rate is cut
    min_improvement: float = 1e-3  # a check improves on the best held-out error only by this relative margin
    val_horizon: int = 8  # held-out points are predicted from the learned state this many observations back
    progress: bool = False  # tqdm bar on stderr
    seed: int = 0
    rate_scale: bool = True  # r above; False: r = 1 (no rate scaling: slow to converge on fast systems such as Lorenz)
    standardized_states: bool = False  # learn ŝ_j as m + s ⊙ u_j (Adam's steps then scale with each variable's std)

    def validate(self) -> None:
        if self.iterations < 1 or self.lr <= 0 or self.min_lr < 0:
            raise ValueError(
                f"need iterations >= 1, lr > 0, min_lr >= 0; got {self.iterations}, {self.lr}, {self.min_lr}"
            )
        if self.window < 1 or (self.substeps is not None and self.substeps < 1):
            raise ValueError(f"need window >= 1 and substeps >= 1; got {self.window}, {self.substeps}")
        if not 0 <= self.validation < 0.5 or self.check_every < 1 or self.patience < 1:
            raise ValueError(
                f"need 0 <= validation < 0.5, check_every >= 1, patience >= 1; got {self.validation}, "
                f"{self.check_every}, {self.patience}"
            )


class StandardizedField(nn.Module):
    """dx/dt = s ⊙ r ⊙ g((x − m)/s) with g an MLP; m, s, r fixed buffers (r: ones when not given).
    With control inputs (input_mean, input_std [p] given): dx/dt = s ⊙ r ⊙ g((x − m)/s, (u − m_u)/s_u),
    g's first d outputs (an MLP of width d + p)."""

    mean: Tensor  # buffers (set in __init__)
    std: Tensor
    rate: Tensor
    input_mean: Tensor  # with control inputs only
    input_std: Tensor

    def __init__(
        self,
        mean: Tensor,
        std: Tensor,
        hidden: Sequence[int],
        activation: str,
        rate: Optional[Tensor] = None,
        input_mean: Optional[Tensor] = None,
        input_std: Optional[Tensor] = None,
    ) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.register_buffer("rate", torch.ones_like(std) if rate is None else rate)
        self.n_inputs = 0 if input_mean is None else int(input_mean.shape[-1])
        if input_mean is not None and input_std is not None:
            self.register_buffer("input_mean", input_mean)
            self.register_buffer("input_std", input_std)
        width = mean.shape[-1] + self.n_inputs
        self.net = VectorFieldMLP(width, hidden, activation, transform="identity", dtype=mean.dtype)

    def forward(self, t: Tensor, x: Tensor, u: Optional[Tensor] = None) -> Tensor:
        z = (x - self.mean) / self.std
        if self.n_inputs:
            if u is None:
                raise ValueError("this field was fitted with control inputs; pass u")
            z = torch.cat([z, (u - self.input_mean) / self.input_std], dim=-1)
            return (self.std * self.rate) * self.net(t, z)[..., : self.mean.shape[-1]]
        return (self.std * self.rate) * self.net(t, z)


def typical_rates(t: Tensor, x: Tensor, traj: Tensor, std: Tensor, span: int = 4) -> Tensor:
    """r [d]: the RMS rate of each variable in units of its std, from secants k = `span` observations
    apart within a trajectory, weighted by their duration: r² = Σ (Δx/s)² / Σ Δt². (Not neighbours and
    not a plain mean of Δx/Δt: irregular times put some points very close, where the noise would
    dominate. Not a median: an epidemic is flat most of the time, and its median rate was 30–60×
    below its RMS, which left the network to output values of ~100 at the peak.)"""
    k = max(1, min(span, t.shape[0] - 1))
    while k > 1 and not bool((traj[k:] == traj[:-k]).any()):
        k -= 1
    same = traj[k:] == traj[:-k]
    if not bool(same.any()):
        return torch.ones_like(std)
    dx = ((x[k:] - x[:-k]) / std)[same]
    dt = (t[k:] - t[:-k])[same]
    return (dx.pow(2).sum(dim=0) / dt.pow(2).sum()).sqrt().clamp_min(1e-8)


def rk4_flow(f: nn.Module, z: Tensor, dt: Tensor, steps: int, record: bool = False, inputs: Optional[Tensor] = None):
    """z(Δt) of dz/dt = f(z) from z [m, d] with per-row Δt [m, 1], `steps` classic rk4 steps.
    record=True also returns the states before each step, [steps, m, d]. inputs [steps, 3, m, p]:
    control inputs at each step's start, middle and end (odeflow.discover.inputs), passed as f(t, z, u)."""
    h = dt / steps
    t0 = z.new_zeros(())
    seen = []

    def g(z_: Tensor, u: Optional[Tensor]) -> Tensor:
        return f(t0, z_) if u is None else f(t0, z_, u)

    for s in range(steps):
        if record:
            seen.append(z)
        z = rk4_step(g, z, h, (None, None, None) if inputs is None else inputs[s])
    return (z, torch.stack(seen)) if record else z


def check_observations(
    t: Tensor, x: Tensor, trajectory: Optional[Tensor] = None, min_points: int = 4, names: Optional[List[str]] = None
) -> Tensor:
    """Validate (t [n], x [n, d], trajectory ids [n]) and return the ids (zeros when not given).
    Raises ValueError naming the problem: shapes, NaN/inf, too few points, times not strictly
    increasing within a trajectory, constant variables."""
    if x.dim() != 2 or t.dim() != 1 or x.shape[0] != t.shape[0]:
        raise ValueError(f"need t [n] and x [n, d]; got t {tuple(t.shape)}, x {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()) or not bool(torch.isfinite(t).all()):
        raise ValueError("observations contain NaN or inf; drop or fill those rows first")
    traj = torch.zeros(t.shape[0], dtype=torch.long) if trajectory is None else torch.as_tensor(trajectory).long()
    if traj.shape != t.shape:
        raise ValueError(f"trajectory ids must be one per observation; got {tuple(traj.shape)} for {t.shape[0]} rows")
    for k in torch.unique(traj).tolist():
        idx = (traj == k).nonzero().flatten()
        if len(idx) < min_points:
            raise ValueError(
                f"trajectory {k} has {len(idx)} observations; need at least {min_points} per trajectory "
                f"to fit an ODE (merge or drop short trajectories)"
            )
        if not bool((idx[1:] == idx[:-1] + 1).all()):
            raise ValueError(f"rows of trajectory {k} are not contiguous; sort the data by trajectory, then time")
        tk = t[idx]
        if not bool((tk[1:] > tk[:-1]).all()):
            raise ValueError(
                f"times must be strictly increasing within each trajectory (trajectory {k}); "
                f"sort by time and drop duplicate times"
            )
    std = x.std(dim=0)
    const = (std <= 1e-12 * (1 + x.abs().amax(dim=0))).nonzero().flatten().tolist()
    if const:
        if names is not None and len(names) == x.shape[1]:
            const = [names[j] for j in const]
        raise ValueError(
            f"variable column(s) {const} are constant over all observations: nothing to fit there; "
            f"drop them (their derivative is 0)"
        )
    return traj


@dataclass
class NeuralFit:
    field: StandardizedField
    x0: Tensor
    t0: float
    t_end: float
    losses: List[float] = field(default_factory=list)
    states: Optional[Tensor] = None  # the learned (denoised) state at every training observation
    t_train: Optional[Tensor] = None
    trajectory_train: Optional[Tensor] = None
    val_losses: List[float] = field(default_factory=list)  # one per check
    best_val: float = float("nan")
    best_iteration: int = 0
    iterations: int = 0
    stopped_early: bool = False
    substeps: int = 2
    inputs: Optional[InputSignal] = None  # control inputs u(t) (odeflow.discover.inputs), when the data has some

    @property
    def final_loss(self) -> float:
        return self.losses[self.best_iteration] if self.losses else float("nan")

    def trajectory(self, t: Tensor) -> Tensor:
        """The fitted ODE's solution from the learned x(t_0) at times t (dopri5, rtol 1e-9); with
        inputs, u(t) of the first trajectory."""
        fld: Any = self.field
        if self.inputs is not None:
            signal, first = self.inputs, self.trajectory_train[:1] if self.trajectory_train is not None else None
            assert first is not None

            def fld(t_: Tensor, y: Tensor) -> Tensor:
                return self.field(t_, y, signal.at(t_.reshape(1), first)[0])

        with torch.no_grad():
            return solve(fld, self.x0, t.to(self.x0.dtype), method="dopri5", step=Adaptive(rtol=1e-9, atol=1e-11)).ys

    def field_at(self, t: Tensor, x: Tensor, trajectory: Tensor) -> Tensor:
        """f_θ at states x [m, d] observed at times t [m] of trajectories [m] (the inputs there, if any)."""
        if self.inputs is None:
            return self.field(t[0], x)
        return self.field(t[0], x, self.inputs.at(t, trajectory))

    def resample(self, n: int = 1000) -> Tuple[Tensor, Tensor, Tensor]:
        """(t [n] regular on the first trajectory's span, x [n, d] from the fitted ODE, dx/dt = f_θ(x))."""
        if n < 3:
            raise ValueError(f"need n >= 3 regular samples; got {n}")
        t = torch.linspace(self.t0, self.t_end, n, dtype=self.x0.dtype)
        x = self.trajectory(t)
        with torch.no_grad():
            return t, x, self.field_at(t, x, torch.zeros_like(t, dtype=torch.long) + self._first_trajectory())

    def _first_trajectory(self) -> int:
        return int(self.trajectory_train[0]) if self.trajectory_train is not None else 0

    def samples(
        self, n: int = 1000, nearby: int = 0, spread: float = 0.05, folds: int = 5, seed: int = 0, laws: Sequence = ()
    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Samples where the data is: from every learned state ŝ_j the field is rolled to the next
        observation of its trajectory (rk4), recording ~n points in all, with dx/dt = f_θ(x); plus
        `nearby` copies started at ŝ_j + spread·s·N(0, I) (s: the data's std), which the field
        carries along the same intervals (with `laws`, affine conservation laws found on the data
        (odeflow.discover.invariants), the perturbations stay on their level sets). Returns (t, x, xdot, group, trajectory) as numpy arrays;
        group labels `folds` contiguous time windows per trajectory for cross-validation.
        """
        if n < 3:
            raise ValueError(f"need n >= 3 samples; got {n}")
        st, tt, tr = self.states, self.t_train, self.trajectory_train
        assert st is not None and tt is not None and tr is not None, "samples() needs a finished fit"
        nxt = torch.arange(1, len(tt))
        starts = nxt[tr[nxt] == tr[nxt - 1]] - 1
        q = max(1, int(np.ceil(n / max(1, len(starts)))))
        dt = (tt[starts + 1] - tt[starts]).unsqueeze(-1)
        z0 = st[starts]
        gen = torch.Generator().manual_seed(seed)
        copies = [z0]
        for _ in range(nearby):
            delta = torch.randn(z0.shape, generator=gen, dtype=z0.dtype)
            if laws:
                from .invariants import project

                delta = torch.as_tensor(project(delta.numpy(), self.field.std.numpy(), laws), dtype=z0.dtype)
            copies.append(z0 + spread * self.field.std * delta)
        xs: List[Tensor] = []
        frac = torch.arange(q, dtype=z0.dtype).view(q, 1) / q
        t_rows = tt[starts].unsqueeze(0) + frac * dt.view(1, -1)  # [q, m]
        traj = tr[starts].repeat(q * len(copies))
        t_all = t_rows.reshape(-1).repeat(len(copies))
        stages = stages_or_none(self.inputs, tt[starts], dt, q * self.substeps, tr[starts])
        with torch.no_grad():
            for z in copies:
                _, seen = rk4_flow(self.field, z, dt, q * self.substeps, record=True, inputs=stages)
                xs.append(seen[:: self.substeps].reshape(-1, z.shape[-1]))
            x = torch.cat(xs)
            xdot = self.field_at(t_all, x, traj)
        group = torch.zeros_like(traj)
        for k in torch.unique(tr).tolist():
            on = tr == k
            lo, hi = float(tt[on].min()), float(tt[on].max())
            mine = traj == k
            g = ((t_all[mine] - lo) / max(hi - lo, 1e-300) * folds).long().clamp(0, folds - 1)
            group[mine] = k * folds + g
        return t_all.numpy(), x.numpy(), xdot.numpy(), group.numpy(), traj.numpy()


def auto_substeps(t: Tensor, x: Tensor, traj: Tensor, std: Tensor, max_jump: float = 0.7, cap: int = 4) -> int:
    """rk4 steps per observation interval so that no step moves a variable by more than about
    max_jump of its std, judged from the largest change between consecutive observations."""
    same = traj[1:] == traj[:-1]
    if not bool(same.any()):
        return 1
    jump = float(((x[1:] - x[:-1]).abs() / std).amax(dim=-1)[same].max())
    return int(min(cap, max(1, int(np.ceil(jump / max_jump)))))


def _windows(t: Tensor, traj: Tensor, k: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Window starts, step lengths dt [k, m, 1] (0 past a trajectory's end) and validity mask [k, m]."""
    n = t.shape[0]
    starts = torch.arange(n - 1)
    starts = starts[traj[starts + 1] == traj[starts]]
    dts, valid = [], []
    for i in range(1, k + 1):
        tgt = (starts + i).clamp(max=n - 1)
        ok = (starts + i <= n - 1) & (traj[tgt] == traj[starts])
        dts.append(torch.where(ok, t[tgt] - t[(tgt - 1).clamp(min=0)], torch.zeros_like(t[tgt])))
        valid.append(ok)
    return starts, torch.stack(dts).unsqueeze(-1), torch.stack(valid)


def shooting_loss(
    fld: nn.Module,
    states: Tensor,
    x: Tensor,
    std: Tensor,
    starts: Tensor,
    dts: Tensor,
    valid: Tensor,
    substeps: int,
    inputs: Optional[List[Tensor]] = None,
) -> Tensor:
    """The multiple-shooting objective above (windows from `_windows`; inputs: per window interval
    the control inputs of its rk4 stages, [substeps, 3, m, p])."""
    err = ((states - x) / std).pow(2).mean()
    z = states[starts]
    total, count = x.new_zeros(()), valid.sum().clamp(min=1)
    for i in range(dts.shape[0]):
        z = rk4_flow(fld, z, dts[i], substeps, inputs=None if inputs is None else inputs[i])
        tgt = (starts + i + 1).clamp(max=x.shape[0] - 1)
        sq = ((z - x[tgt]) / std).pow(2).mean(dim=-1)
        total = total + (sq * valid[i]).sum()
    return err + total / count


def _split(t: Tensor, traj: Tensor, fraction: float, gen: torch.Generator) -> Tensor:
    """Boolean mask of held-out observations: a random `fraction` of each trajectory's interior
    points (never the first or last), only where the trajectory keeps >= 4 training points."""
    held = torch.zeros(t.shape[0], dtype=torch.bool)
    if fraction <= 0:
        return held
    for k in torch.unique(traj).tolist():
        idx = (traj == k).nonzero().flatten()
        n_val = min(int(round(fraction * len(idx))), len(idx) - 4)
        if n_val < 1:
            continue
        inner = idx[1:-1]
        held[inner[torch.randperm(len(inner), generator=gen)[:n_val]]] = True
    return held


@dataclass
class _Problem:
    """Everything the training loop needs, fixed before it starts."""

    x: Tensor  # [n, d] all observations
    tr_t: Tensor  # training rows
    tr_x: Tensor
    tr_id: Tensor
    std: Tensor
    substeps: int
    starts: Tensor  # shooting windows (`_windows`)
    dts: Tensor
    valid: Tensor
    window_inputs: Optional[List[Tensor]]  # per window interval: [substeps, 3, m, p]
    v_idx: Tensor  # held-out rows, each predicted from training row v_from over v_dt in v_steps rk4 steps
    v_from: Tensor
    v_dt: Tensor
    v_steps: int
    v_inputs: Optional[Tensor]


def _problem(t: Tensor, x: Tensor, traj: Tensor, cfg: NeuralFitConfig, signal: Optional[InputSignal]) -> _Problem:
    """Training / held-out split, shooting windows, and the validation rollouts: each held-out x_v is
    rolled from the training state `val_horizon` observations before it."""
    held = _split(t, traj, cfg.validation, torch.Generator().manual_seed(cfg.seed))
    tr_t, tr_x, tr_id = t[~held], x[~held], traj[~held]
    std = x.std(dim=0).clamp_min(1e-8)
    substeps = cfg.substeps or auto_substeps(tr_t, tr_x, tr_id, std)
    starts, dts, valid = _windows(tr_t, tr_id, min(cfg.window, tr_t.shape[0] - 1))
    window_inputs = None
    if signal is not None:
        n = tr_t.shape[0]
        window_inputs = [
            signal.stages(tr_t[(starts + i).clamp(max=n - 1)], dts[i], substeps, tr_id[starts])
            for i in range(dts.shape[0])
        ]
    v_idx = held.nonzero().flatten()
    back = max(1, cfg.val_horizon)
    pos = torch.cumsum((~held).long(), 0) - 1  # index into the training arrays of the last training row <= i
    v_from: List[int] = []
    for v in v_idx.tolist():
        first = int((tr_id == traj[v]).nonzero()[0])
        v_from.append(max(first, int(pos[v]) - back + 1))
    v_from_t = torch.tensor(v_from, dtype=torch.long)
    v_dt = (t[v_idx] - tr_t[v_from_t]).unsqueeze(-1)
    v_steps = substeps * (back + 1)
    v_inputs = stages_or_none(signal, tr_t[v_from_t], v_dt, v_steps, traj[v_idx]) if len(v_idx) else None
    return _Problem(
        x, tr_t, tr_x, tr_id, std, substeps, starts, dts, valid, window_inputs, v_idx, v_from_t, v_dt, v_steps, v_inputs
    )


@dataclass
class _Training:
    losses: List[float] = field(default_factory=list)
    val_losses: List[float] = field(default_factory=list)
    best: Tuple[float, int, Optional[Dict[str, Any]], Optional[Tensor]] = (float("inf"), 0, None, None)
    stopped: bool = False


def _train(fld: StandardizedField, u: nn.Parameter, centre: Tensor, scale: Tensor, pb: _Problem, cfg: NeuralFitConfig):
    """Adam on the shooting loss; every `check_every` iterations the held-out error, the best
    checkpoint kept, the rate cut (×0.3) after `patience` checks without improvement."""
    opt = torch.optim.Adam([*fld.parameters(), u], lr=cfg.lr)
    run = _Training()
    bad, lr = 0, cfg.lr
    bar = progress_bar(cfg.progress, "neural ODE fit", cfg.iterations, "it")
    try:
        for it in range(cfg.iterations):
            loss = shooting_loss(
                fld, centre + scale * u, pb.tr_x, pb.std, pb.starts, pb.dts, pb.valid, pb.substeps, pb.window_inputs
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            run.losses.append(float(loss.detach()))
            bar.update(1)
            if (it + 1) % cfg.check_every and it + 1 != cfg.iterations:
                continue
            with torch.no_grad():
                states = centre + scale * u
                if len(pb.v_idx):
                    pred = rk4_flow(fld, states[pb.v_from], pb.v_dt, pb.v_steps, inputs=pb.v_inputs)
                    score = float(((pred - pb.x[pb.v_idx]) / pb.std).pow(2).mean())
                else:
                    score = float(np.mean(run.losses[-cfg.check_every :]))
            run.val_losses.append(score)
            bar.set_postfix_str(f"loss={run.losses[-1]:.3g}, val={score:.3g}, lr={lr:.1e}")
            if score < run.best[0] * (1 - cfg.min_improvement):
                run.best = (score, it, {k: v.clone() for k, v in fld.state_dict().items()}, states.detach().clone())
                bad = 0
            else:
                bad += 1
            if bad >= cfg.patience:
                if lr * 0.3 < cfg.min_lr:
                    run.stopped = True
                    break
                lr *= 0.3
                for group in opt.param_groups:
                    group["lr"] = lr
                bad = 0
    finally:
        bar.close()
    return run


def fit_neural_ode(
    t: Tensor,
    x: Tensor,
    config: Optional[NeuralFitConfig] = None,
    trajectory: Optional[Tensor] = None,
    inputs: Optional[InputSignal] = None,
) -> NeuralFit:
    """Fit one field dx/dt = f_θ(x) (or f_θ(x, u(t)) with control inputs) to observations x [n, d] at
    times t [n] (float64 inside). trajectory [n]: trajectory id per row (rows of a trajectory
    contiguous, times increasing)."""
    cfg = config or NeuralFitConfig()
    cfg.validate()
    traj = check_observations(t, x, trajectory, min_points=4)
    t, x = t.to(torch.float64), x.to(torch.float64)
    torch.manual_seed(cfg.seed)
    pb = _problem(t, x, traj, cfg, inputs)
    rate = typical_rates(pb.tr_t, pb.tr_x, pb.tr_id, pb.std) if cfg.rate_scale else None
    u_mean = u_std = None
    if inputs is not None:
        u_mean, u_std = inputs.u.mean(dim=0), inputs.u.std(dim=0).clamp_min(1e-8)
    fld = StandardizedField(x.mean(dim=0), pb.std, cfg.hidden, cfg.activation, rate, u_mean, u_std)
    centre = x.mean(dim=0) if cfg.standardized_states else torch.zeros_like(pb.std)
    scale = pb.std if cfg.standardized_states else torch.ones_like(pb.std)
    u = nn.Parameter((pb.tr_x - centre) / scale)
    run = _train(fld, u, centre, scale, pb, cfg)
    _, best_it, best_state, best_states = run.best
    if best_state is not None and best_states is not None:
        fld.load_state_dict(best_state)
        learned = best_states
    else:
        learned = (centre + scale * u).detach().clone()
    first = pb.tr_id == pb.tr_id[0]
    return NeuralFit(
        fld,
        learned[0].clone(),
        float(pb.tr_t[0]),
        float(pb.tr_t[first][-1]),
        run.losses,
        learned,
        pb.tr_t,
        pb.tr_id,
        run.val_losses,
        run.best[0],
        best_it,
        len(run.losses),
        run.stopped,
        pb.substeps,
        inputs,
    )
