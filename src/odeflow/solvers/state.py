"""States made of several tensors, and the weighted error norm used for step-size control.

A tuple state (y_1, ..., y_m) is packed into one flat vector so the solver only ever sees a
single tensor; the error norm can weigh the components differently, and a weight of 0 leaves
a component out entirely (Kidger et al. 2021, "seminorms"; RNODE regularizer integrals).
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

State = Union[Tensor, Tuple[Tensor, ...]]
PerComponent = Union[float, Sequence[float]]


class StatePacker:
    """Packs a tensor or a tuple of tensors into the single tensor the solver works on.

    A plain tensor passes through unchanged (any shape, batch dimensions included); a tuple
    is flattened and concatenated. All tuple members must share dtype and device.
    """

    def __init__(self, y0: State) -> None:
        self.is_tuple = isinstance(y0, (tuple, list))
        parts = tuple(y0) if self.is_tuple else (y0,)
        if len(parts) == 0:
            raise ValueError("y0 is an empty tuple; give at least one tensor")
        for i, p in enumerate(parts):
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"y0{f'[{i}]' if self.is_tuple else ''} is a {type(p).__name__}, expected a torch.Tensor"
                )
            if not (p.is_floating_point() or p.is_complex()):
                raise TypeError(
                    f"y0{f'[{i}]' if self.is_tuple else ''} has dtype {p.dtype}; the state must be floating point "
                    "or complex (e.g. y0.float() or y0.double())"
                )
        if len({p.dtype for p in parts}) > 1 or len({p.device for p in parts}) > 1:
            raise ValueError(
                "all tensors of a tuple state must share dtype and device; got "
                f"{[(p.dtype, str(p.device)) for p in parts]}"
            )
        self.shapes = [p.shape for p in parts]
        self.numels = [p.numel() for p in parts]
        self.dtype, self.device = parts[0].dtype, parts[0].device
        # Times and tolerances are real even for a complex state.
        self.real_dtype = parts[0].abs().dtype if parts[0].is_complex() else parts[0].dtype

    def pack(self, y: State) -> Tensor:
        if not self.is_tuple:
            return y  # type: ignore[return-value]
        return torch.cat([p.reshape(-1) for p in y])

    def unpack(self, flat: Tensor) -> State:
        if not self.is_tuple:
            return flat
        return tuple(p.view(s) for p, s in zip(flat.split(self.numels), self.shapes))

    def unpack_series(self, ys: Tensor) -> State:
        """[n_times, total] → tuple of [n_times, *shape_i] (or the tensor itself)."""
        if not self.is_tuple:
            return ys
        # Slices viewed to shape (as torchdiffeq's _flat_to_shape): each component's grad_fn is
        # View <- Slice <- the solver's node (the adjoint's, whose adjoint_options callers inspect).
        n, start, out = ys.shape[0], 0, []
        for numel, shape in zip(self.numels, self.shapes):
            out.append(ys[:, start : start + numel].view(n, *shape))
            start += numel
        return tuple(out)

    def per_component(self, value: Union[PerComponent, Tensor, None], what: str) -> Union[float, Tensor, None]:
        """A float, or a flat tensor holding one value per element of each tuple component.

        A tensor is taken as already holding one value per element of the packed state."""
        if value is None or isinstance(value, (int, float)):
            return value
        if isinstance(value, Tensor):
            if value.dim() != 1 or value.numel() != sum(self.numels):
                raise ValueError(
                    f"{what} as a tensor needs one value per state element ({sum(self.numels)}); "
                    f"got shape {tuple(value.shape)}"
                )
            return value.to(dtype=self.real_dtype, device=self.device)
        values = list(value)
        if not self.is_tuple or len(values) != len(self.numels):
            raise ValueError(
                f"{what} has {len(values)} entries but the state has "
                f"{len(self.numels) if self.is_tuple else 1} component(s); give one value or one per component"
            )
        return torch.cat(
            [torch.full((n,), float(v), dtype=self.real_dtype, device=self.device) for v, n in zip(values, self.numels)]
        )


def _given(value: Union[float, Tensor, None]) -> Union[float, Tensor]:
    assert value is not None, "a tolerance is always given"
    return value


class ErrorNorm:
    """Weighted RMS norm of err / (atol + rtol * max(|y0|, |y1|)) (Hairer I, eq. 4.11).

    ``weights`` (per tuple component) multiply each squared ratio; the mean is taken over the
    weighted elements only, so weight 0 removes a component from step-size control.
    ``fn``, if given, replaces the RMS: it receives the ratio shaped like the state (a tuple
    for tuple states) and returns a scalar (torchdiffeq's ``options={'norm': fn}``).
    """

    def __init__(
        self,
        packer: StatePacker,
        rtol: PerComponent,
        atol: PerComponent,
        weights: Union[Sequence[float], Tensor, None] = None,
        fn: Optional[Callable[[State], Union[Tensor, float]]] = None,
    ) -> None:
        self.packer, self.fn = packer, fn
        self.rtol = _given(packer.per_component(rtol, "rtol"))
        self.atol = _given(packer.per_component(atol, "atol"))
        self.weights: Optional[Tensor] = None
        self.weight_sum = 1.0
        if weights is not None:
            w = packer.per_component(weights if isinstance(weights, Tensor) else list(weights), "weights")
            assert isinstance(w, Tensor)
            if (w < 0).any() or float(w.sum()) <= 0:
                raise ValueError("error-norm weights must be >= 0 with at least one positive")
            self.weights, self.weight_sum = w, float(w.sum())

    def scale(self, y0: Tensor, y1: Optional[Tensor] = None) -> Tensor:
        mag = y0.abs() if y1 is None else torch.maximum(y0.abs(), y1.abs())
        return self.atol + self.rtol * mag

    def rms(self, ratio: Tensor) -> Tensor:
        if self.fn is not None:
            return torch.as_tensor(self.fn(self.packer.unpack(ratio)), dtype=self.packer.real_dtype).abs()
        if ratio.is_complex():
            ratio = ratio.abs()
        sq = ratio * ratio
        if self.weights is None:
            return sq.mean().sqrt()
        return ((sq.reshape(-1) * self.weights).sum() / self.weight_sum).sqrt()

    def __call__(self, err: Tensor, y0: Tensor, y1: Optional[Tensor] = None) -> Tensor:
        return self.rms(err / self.scale(y0, y1))


def packed_func(func: Callable[[Tensor, State], State], packer: StatePacker) -> Callable[[Tensor, Tensor], Tensor]:
    """The user's f(t, y) seen through the packer: flat in, flat out."""
    if not packer.is_tuple:
        return func  # type: ignore[return-value]

    def f(t: Tensor, flat: Tensor) -> Tensor:
        return packer.pack(func(t, packer.unpack(flat)))

    return f
