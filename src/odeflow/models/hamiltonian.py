"""Hamiltonian neural networks (Greydanus et al. 2019; seed 002, "Extensions").

A network learns a scalar energy H_θ(q, p); the dynamics are its symplectic gradient

    dq/dt = ∂H/∂p,    dp/dt = −∂H/∂q,

taken by autograd. The field J∇H (J = [[0, I], [−I, 0]]) is divergence-free for any H (its
Jacobian J·∇²H has zero trace) and H is a first integral: dH/dt = ∇H·J∇H = 0, so energy is
conserved up to the solver's error. For a separable H = T(p) + V(q) the leapfrog integrator
(`odeflow.solvers.symplectic.leapfrog`) keeps the energy error bounded over long rollouts.

State layout: z = [q, p] of shape [batch, 2n] (n degrees of freedom).
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..gradients import DiscretizeOptimize, OptimizeDiscretize
from ..solve import solve
from ..solvers.stepping import Adaptive, FixedStep
from ..solvers.symplectic import leapfrog

SMOOTH_ACTIVATIONS: Dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": torch.tanh,
    "softplus": F.softplus,
    "swish": F.silu,
    "elu": F.elu,
}


class ScalarMLP(nn.Module):
    """x [batch, dim] -> [batch]; a smooth MLP (its gradient is the vector field)."""

    def __init__(self, dim: int, hidden: Sequence[int] = (64, 64), activation: str = "tanh") -> None:
        super().__init__()
        if activation not in SMOOTH_ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r} for an energy network; valid (smooth): "
                f"{', '.join(sorted(SMOOTH_ACTIVATIONS))}"
            )
        if dim < 1 or any(h < 1 for h in hidden):
            raise ValueError(f"dimensions must be positive; got dim={dim}, hidden={list(hidden)}")
        widths = [dim, *hidden, 1]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.act = SMOOTH_ACTIVATIONS[activation]

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers[:-1]:
            x = self.act(layer(x))
        return self.layers[-1](x).squeeze(-1)


def _grad(energy: Tensor, wrt: Tensor, need_graph: bool) -> Tensor:
    (g,) = torch.autograd.grad(energy.sum(), wrt, create_graph=need_graph)
    return g


def _leaf(x: Tensor) -> Tensor:
    """x itself when it already carries a graph (training through the solver), else a fresh leaf."""
    return x if x.requires_grad else x.detach().requires_grad_(True)


class HamiltonianNN(nn.Module):
    """f(t, z) = J ∇H(z) for z = [q, p] of shape [batch, 2·dof].

    ``energy`` is any module mapping [batch, 2·dof] -> [batch] (default: `ScalarMLP`); a known
    H can be plugged in to check the structure. The field is built with create_graph exactly when
    gradients are being recorded, so it trains through odeflow.solve (both gradient modes).
    """

    def __init__(
        self, dof: int, hidden: Sequence[int] = (64, 64), activation: str = "tanh", energy: Optional[nn.Module] = None
    ) -> None:
        super().__init__()
        if dof < 1:
            raise ValueError(f"dof (degrees of freedom) must be >= 1; got {dof}")
        self.dof = dof
        self.energy = ScalarMLP(2 * dof, hidden, activation) if energy is None else energy
        self.config = dict(dof=dof, hidden=list(hidden), activation=activation)

    def hamiltonian(self, z: Tensor) -> Tensor:
        """H(z) for z [..., 2·dof] -> [...]."""
        self._check(z)
        return self.energy(z)

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        self._check(z)
        need_graph = torch.is_grad_enabled()
        with torch.enable_grad():
            z_ = _leaf(z)
            dh = _grad(self.energy(z_), z_, need_graph)
        dq, dp = dh[..., : self.dof], dh[..., self.dof :]
        out = torch.cat([dp, -dq], dim=-1)
        return out if need_graph else out.detach()

    def rollout(
        self,
        z0: Tensor,
        t: Tensor,
        method: str = "dopri5",
        step: Optional[Union[FixedStep, Adaptive]] = None,
        gradient: Optional[Union[DiscretizeOptimize, OptimizeDiscretize]] = None,
    ) -> Tensor:
        """z at every time in t: [len(t), *z0.shape], with any odeflow method (leapfrog: only for a
        separable H, `SeparableHamiltonianNN`)."""
        if method == "leapfrog" and not self.config.get("separable"):
            raise ValueError("method='leapfrog' needs a separable H = T(p) + V(q): use SeparableHamiltonianNN")
        return solve(self, z0, t, method=method, step=step, gradient=gradient).ys

    def _check(self, z: Tensor) -> None:
        if z.shape[-1] != 2 * self.dof:
            raise ValueError(f"state must end in 2*dof = {2 * self.dof} entries [q, p]; got shape {tuple(z.shape)}")


class SeparableHamiltonianNN(HamiltonianNN):
    """H(q, p) = T_θ(p) + V_θ(q), two scalar networks; adds the leapfrog rollout.

    ``kinetic`` / ``potential`` map [batch, dof] -> [batch] (default: `ScalarMLP`).
    """

    def __init__(
        self,
        dof: int,
        hidden: Sequence[int] = (64, 64),
        activation: str = "tanh",
        kinetic: Optional[nn.Module] = None,
        potential: Optional[nn.Module] = None,
    ) -> None:
        super().__init__(dof, hidden, activation, energy=nn.Identity())
        self.kinetic = ScalarMLP(dof, hidden, activation) if kinetic is None else kinetic
        self.potential = ScalarMLP(dof, hidden, activation) if potential is None else potential
        self.energy = _SeparableEnergy(self.kinetic, self.potential, dof)
        self.config["separable"] = True

    def kinetic_grad(self, p: Tensor) -> Tensor:
        need_graph = torch.is_grad_enabled()
        with torch.enable_grad():
            p_ = _leaf(p)
            g = _grad(self.kinetic(p_), p_, need_graph)
        return g if need_graph else g.detach()

    def potential_grad(self, q: Tensor) -> Tensor:
        need_graph = torch.is_grad_enabled()
        with torch.enable_grad():
            q_ = _leaf(q)
            g = _grad(self.potential(q_), q_, need_graph)
        return g if need_graph else g.detach()

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        self._check(z)
        q, p = z[..., : self.dof], z[..., self.dof :]
        return torch.cat([self.kinetic_grad(p), -self.potential_grad(q)], dim=-1)

    def rollout(
        self,
        z0: Tensor,
        t: Tensor,
        method: str = "leapfrog",
        step: Optional[Union[FixedStep, Adaptive]] = None,
        gradient: Optional[Union[DiscretizeOptimize, OptimizeDiscretize]] = None,
    ) -> Tensor:
        """As HamiltonianNN.rollout, plus method='leapfrog' (needs step=FixedStep(...))."""
        if method != "leapfrog":
            return super().rollout(z0, t, method, step, gradient)
        if gradient is not None and not isinstance(gradient, DiscretizeOptimize):
            raise ValueError("leapfrog differentiates through its steps; use gradient=None or DiscretizeOptimize()")
        if not isinstance(step, FixedStep):
            raise ValueError("method='leapfrog' needs step=FixedStep(h) or FixedStep(steps=n)")
        self._check(z0)
        qs, ps = leapfrog(self.kinetic_grad, self.potential_grad, z0[..., : self.dof], z0[..., self.dof :], t, step)
        return torch.cat([qs, ps], dim=-1)


class _SeparableEnergy(nn.Module):
    def __init__(self, kinetic: nn.Module, potential: nn.Module, dof: int) -> None:
        super().__init__()
        self._parts: Tuple[nn.Module, nn.Module] = (kinetic, potential)  # registered on the parent
        self.dof = dof

    def forward(self, z: Tensor) -> Tensor:
        kinetic, potential = self._parts
        return kinetic(z[..., self.dof :]) + potential(z[..., : self.dof])
