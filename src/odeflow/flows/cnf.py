"""CNF blocks (FFJORD): z' = f(t, z), l' = -tr(df/dz), from t = 0 to T.

With l(0) = 0, log p(x) = log N(z(T); 0, I) - l(T)   (instantaneous change of variables).
Loss per sample (seed 000 eq. 15): D/2 log 2 pi + |z(T)|^2/2 - int_0^T tr J dt.
Any solver and either gradient mode; T fixed or trainable; exact or Hutchinson divergence.

RNODE (Finlay et al. 2020, seed 001): with kinetic = lambda_K or jacobian = lambda_J > 0 the
training state grows two per-sample integrals, normalised per dimension as in the reference
code,
    E' = 0.5 * mean_i f_i^2          (kinetic energy)
    n' = mean_i (e^T J)_i^2          (Jacobian Frobenius; exact trace: ||J||_F^2 / D),
which reuse the f and the VJP rows of the divergence (no extra VJP) and are left out of the
step-size error norm. `loss(x)` = mean NLL + lambda_K mean E(T) + lambda_J mean n(T).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Dict, List, Optional, Sequence, Tuple, Union, cast

import torch
from torch import Tensor, nn

from ..gradients import DiscretizeOptimize, OptimizeDiscretize
from ..solve import solve
from ..solvers.problem import capturing
from ..solvers.solution import SolverStats
from ..solvers.stepping import Adaptive, FixedStep
from .divergence import NOISES, divergence_hutchinson, sample_noise, trace_and_frobenius_batched
from .functional_divergence import CNFDynamics

StepControl = Union[FixedStep, Adaptive]


def check_batch(x: Tensor, dim: int, what: str = "x") -> None:
    """A clear error for data of the wrong shape or with NaN/inf rows (the NaN check is skipped
    inside CUDA-graph capture, where it would be a host sync)."""
    if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != dim:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{what} must have shape [batch, {dim}] for this flow; got {shape}")
    if capturing(x):
        return
    if bool(torch.isfinite(x.sum())):  # NaN and inf reach the sum: one reduction (~20x cheaper than per row)
        return  # (a sum that overflows to inf falls through to the row check, which then passes)
    finite = torch.isfinite(x).all(dim=1)
    if not bool(finite.all()):
        rows = (~finite).nonzero().reshape(-1)[:5].tolist()
        raise ValueError(f"{what} contains NaN or inf in rows {rows} (of {x.shape[0]}); clean the batch")


def standard_normal_logprob(z: Tensor) -> Tensor:
    return -0.5 * (z.shape[1] * math.log(2 * math.pi) + (z * z).sum(dim=1))


class CNF(nn.Module):
    """One continuous normalizing flow block.

    Args:
        net: f(t, z) for z of shape [batch, dim] (e.g. `odeflow.nn.ODENet`).
        T: end time; trainable with ``train_T=True`` (TO-FLOW).
        divergence: 'exact' or 'hutchinson' (noise 'gaussian' or 'rademacher').
        method, step: solver used for training and, unless changed, evaluation.
        adjoint: optimize-discretize (continuous adjoint) instead of discretize-optimize.
        kinetic, jacobian: RNODE coefficients lambda_K, lambda_J used by `loss`.
        compile: solve through torch.compile (`solve(..., compile=True)`); the divergence and
            RNODE rates then come from torch.func (`CNFDynamics`), results equal to eager.
        checkpoints: Disc-Opt with a fixed step only: recompute the steps in this many segments
            during the backward pass (memory O(segments + steps per segment) instead of O(steps)).
        segment_steps: instead of checkpoints, this many steps per segment (what the memory
            planner, `flows.memory_plan`, chooses; it keeps its meaning when h changes).
    """

    # A flag where nn.Module has a method (tasks read `flow.compile`): deliberately shadowed.
    compile: bool  # type: ignore[assignment]
    T: Tensor  # a Parameter (train_T) or a buffer
    _dynamics: Dict[Tuple[str, bool], CNFDynamics]  # set in __init__, not a submodule

    def __init__(
        self,
        net: nn.Module,
        dim: int,
        T: float = 0.5,
        train_T: bool = False,
        divergence: str = "exact",
        noise: str = "gaussian",
        method: str = "dopri5",
        step: Optional[StepControl] = None,
        adjoint: bool = False,
        seminorm: bool = False,
        kinetic: float = 0.0,
        jacobian: float = 0.0,
        compile: bool = False,
        checkpoints: Optional[int] = None,
        segment_steps: Optional[int] = None,
    ) -> None:
        super().__init__()
        if divergence not in ("exact", "hutchinson"):
            raise ValueError(f"unknown divergence {divergence!r}; valid: exact, hutchinson")
        if noise not in NOISES:
            raise ValueError(f"unknown noise {noise!r}; valid: {', '.join(NOISES)}")
        if not T > 0:
            raise ValueError(f"end time T must be > 0; got {T}")
        if kinetic < 0 or jacobian < 0:
            raise ValueError(f"RNODE coefficients must be >= 0; got kinetic={kinetic}, jacobian={jacobian}")
        self.net, self.dim = net, dim
        T_tensor = torch.tensor(float(T))
        if train_T:
            self.T = nn.Parameter(T_tensor)
        else:
            self.register_buffer("T", T_tensor)
        self.divergence, self.noise = divergence, noise
        self.method, self.step = method, step if step is not None else Adaptive(1e-5, 1e-5)
        self.adjoint, self.seminorm = adjoint, seminorm
        self.kinetic, self.jacobian = float(kinetic), float(jacobian)
        self._e: Optional[Tensor] = None
        self.noise_shard: Optional[Tuple[int, slice]] = None  # (global batch, rows): see sample_noise
        self.last_stats = SolverStats()
        self._host_T: Optional[Tuple[tuple, float]] = None
        self.compile = bool(compile)
        if (checkpoints is not None or segment_steps is not None) and (adjoint or compile):
            raise ValueError(
                "checkpoints apply to discretize-optimize without compile; drop checkpoints, "
                "adjoint=True or compile=True"
            )
        if checkpoints is not None and segment_steps is not None:
            raise ValueError("give either checkpoints (number of segments) or segment_steps, not both")
        self.checkpoints, self.segment_steps = checkpoints, segment_steps
        # Not registered as submodules (the state dict keeps the eager layout); one per
        # (divergence, regularize) so a compiled solve sees the same field object every call.
        object.__setattr__(self, "_dynamics", {})

    def dynamics(self, regularize: bool) -> CNFDynamics:
        """The torch.func field used with compile=True (cached per divergence and regularize)."""
        key = (self.divergence, regularize)
        if key not in self._dynamics:
            self._dynamics[key] = CNFDynamics(self.net, self.dim, self.divergence, regularize)
        return self._dynamics[key]

    def set_solver(self, method: str, step: StepControl) -> None:
        """Re-discretize: evaluate (or keep training) with another method/step."""
        self.method, self.step = method, step

    def _gradient(self) -> Union[DiscretizeOptimize, OptimizeDiscretize]:
        if self.adjoint:
            return OptimizeDiscretize(
                params=[p for p in self.net.parameters() if p.requires_grad], seminorm=self.seminorm
            )
        checkpointed = self.checkpoints is not None or self.segment_steps is not None
        if checkpointed and torch.is_grad_enabled() and isinstance(self.step, FixedStep) and self.step.grid is None:
            # evaluation without gradients, or a stage with adaptive steps, runs plainly
            return DiscretizeOptimize(
                checkpoints=self.checkpoints,
                segment_steps=self.segment_steps,
                params=[p for p in self.parameters() if p.requires_grad],
            )
        return DiscretizeOptimize()

    def _times(self, reverse: bool) -> Tensor:
        """[0, T] (or [T, 0]): differentiable when T is trained, else host numbers (read from the
        device once per value of T, so a fixed-T solve on a GPU needs no host sync)."""
        if self.T.requires_grad:
            T = self.T.to(torch.float64)
            t = torch.stack([torch.zeros_like(T), T])
        else:
            key = (self.T.data_ptr(), self.T._version, self.T.device)
            if self._host_T is None or self._host_T[0] != key:
                self._host_T = (key, float(self.T))
            t = torch.tensor([0.0, self._host_T[1]], dtype=torch.float64)
        return t.flip(0) if reverse else t

    def rates(self, t: Tensor, z: Tensor, create: bool, regularize: bool) -> Tuple[Tensor, ...]:
        """(f, tr J[, E', n']) at (t, z); the RNODE rates reuse f and the divergence VJPs."""
        with torch.enable_grad():
            if not (create and z.requires_grad):  # a fresh leaf when no outer graph is being built
                z = z.detach().requires_grad_(True)
            f = self.net(t, z)
            if self.divergence == "exact":
                div, frob = trace_and_frobenius_batched(f, z, create)
                frob = frob / self.dim
            else:
                if self._e is None:
                    raise RuntimeError("Hutchinson noise is drawn by integrate(); set _e before calling rates()")
                div, eJ = divergence_hutchinson(f, z, self._e, create)
                frob = (eJ * eJ).mean(dim=1)
        out = (f, div, 0.5 * (f * f).mean(dim=1), frob) if regularize else (f, div)
        return out if create else tuple(v.detach() for v in out)

    def _augmented(self, t: Tensor, state: Tuple[Tensor, ...]) -> Tuple[Tensor, ...]:
        rates = self.rates(t, state[0], torch.is_grad_enabled(), len(state) == 4)
        return (rates[0], -rates[1]) + tuple(rates[2:])

    @property
    def regularized(self) -> bool:
        return self.kinetic > 0 or self.jacobian > 0

    def _step_for(self, n_components: int) -> StepControl:
        """The step control; regularizer integrals are left out of the adaptive error norm."""
        if n_components == 4 and isinstance(self.step, Adaptive):
            weights = list(self.step.weights or [1.0, 1.0])[:2] + [0.0, 0.0]
            return replace(self.step, weights=weights)
        return self.step

    def integrate(self, x: Tensor, regularize: bool = False) -> Tuple[Tensor, ...]:
        """x -> (z(T), l(T)) or, with ``regularize``, (z(T), l(T), E(T), n(T)), all per sample."""
        check_batch(x, self.dim)
        if self.divergence == "hutchinson":
            self._e = sample_noise(x, self.noise, shard=self.noise_shard)
        zero = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        state: Tuple[Tensor, ...] = (x, zero, zero, zero) if regularize else (x, zero)
        func = self._augmented
        if self.compile:
            func = self.dynamics(regularize)
            func.set_noise(self._e if self.divergence == "hutchinson" else None)
        sol = solve(
            func,
            state,
            self._times(False),
            method=self.method,
            step=self._step_for(len(state)),
            gradient=self._gradient(),
            compile=self.compile,
        )
        self.last_stats = sol.stats
        return tuple(y[-1] for y in sol.ys)

    def transform(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """x -> (z(T), l(T)) with l(T) = -int tr J dt = -log|det dz/dx|."""
        z, logdet = self.integrate(x)
        return z, logdet

    def loss(self, x: Tensor) -> Tuple[Tensor, Dict[str, Tensor]]:
        """Training loss: mean NLL (nats) + lambda_K mean E(T) + lambda_J mean n(T) (RNODE).

        Returns (loss, parts) with parts nll, kinetic, jacobian (detached) and z_T (the end
        state, detached, for the TO-FLOW end-time gradient)."""
        out = self.integrate(x, regularize=self.regularized)
        nll = -(standard_normal_logprob(out[0]) - out[1]).mean()
        loss = nll
        parts = dict(nll=nll.detach(), z_T=out[0].detach())
        if self.regularized:
            kin, jac = out[2].mean(), out[3].mean()
            loss = loss + self.kinetic * kin + self.jacobian * jac
            parts.update(kinetic=kin.detach(), jacobian=jac.detach())
        return loss, parts

    def _field(self, t: Tensor, z: Tensor) -> Tensor:
        return self.net(t, z)

    def push_forward(self, x: Tensor) -> Tensor:
        """x -> z(T) without the log-determinant (cheaper; for plots and inverse checks)."""
        check_batch(x, self.dim)
        sol = solve(
            self.net if self.compile else self._field,
            x,
            self._times(False),
            method=self.method,
            step=self.step,
            gradient=self._gradient(),
            compile=self.compile,
        )
        self.last_stats = sol.stats
        return sol.ys[-1]

    def inverse(self, z: Tensor) -> Tensor:
        """z(T) -> x by integrating f backwards from T to 0."""
        check_batch(z, self.dim, "z")
        sol = solve(
            self.net if self.compile else self._field,
            z,
            self._times(True),
            method=self.method,
            step=self.step,
            gradient=self._gradient(),
            compile=self.compile,
        )
        self.last_stats = sol.stats
        return sol.ys[-1]

    def log_prob(self, x: Tensor) -> Tensor:
        z, logdet = self.transform(x)
        return standard_normal_logprob(z) - logdet

    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        p = next(self.parameters())
        z = torch.randn(
            n,
            self.dim,
            dtype=p.dtype,
            generator=generator,
            device=generator.device if generator is not None else p.device,
        ).to(p.device)
        return self.inverse(z)


class CNFStack(nn.Module):
    """Blocks applied in sequence: log p(x) = log N(z_K) - sum_k l_k."""

    def __init__(self, blocks: Sequence[CNF]) -> None:
        super().__init__()
        if not blocks:
            raise ValueError("a CNF stack needs at least one block")
        self.blocks = nn.ModuleList(blocks)
        self.dim = blocks[0].dim

    @property
    def cnfs(self) -> List[CNF]:
        """The blocks, typed (nn.ModuleList's stub yields plain Modules)."""
        return cast(List[CNF], list(self.blocks))

    def transform(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for block in self.cnfs:
            x, logdet = block.transform(x)
            total = total + logdet
        return x, total

    def push_forward(self, x: Tensor) -> Tensor:
        for block in self.cnfs:
            x = block.push_forward(x)
        return x

    def inverse(self, z: Tensor) -> Tensor:
        for block in reversed(self.cnfs):
            z = block.inverse(z)
        return z

    def log_prob(self, x: Tensor) -> Tensor:
        z, logdet = self.transform(x)
        return standard_normal_logprob(z) - logdet

    def loss(self, x: Tensor) -> Tuple[Tensor, Dict[str, Tensor]]:
        """Mean NLL + each block's RNODE terms (its own lambda_K, lambda_J); parts as `CNF.loss`."""
        total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        reg = torch.zeros((), dtype=x.dtype, device=x.device)
        kin, jac = reg, reg
        for block in self.cnfs:
            out = block.integrate(x, regularize=block.regularized)
            x, total = out[0], total + out[1]
            if block.regularized:
                kin, jac = kin + out[2].mean(), jac + out[3].mean()
                reg = reg + block.kinetic * out[2].mean() + block.jacobian * out[3].mean()
        nll = -(standard_normal_logprob(x) - total).mean()
        return nll + reg, dict(nll=nll.detach(), z_T=x.detach(), kinetic=kin.detach(), jacobian=jac.detach())

    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        p = next(self.parameters())
        return self.inverse(
            torch.randn(
                n,
                self.dim,
                dtype=p.dtype,
                generator=generator,
                device=generator.device if generator is not None else p.device,
            ).to(p.device)
        )

    def set_solver(self, method: str, step: StepControl) -> None:
        for block in self.cnfs:
            block.set_solver(method, step)

    @property
    def nfe(self) -> List[SolverStats]:
        return [b.last_stats for b in self.cnfs]
