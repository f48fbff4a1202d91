"""Vector fields for neural ODEs: time-conditioned layers and the ODE nets built from them."""

from .control import ControlLayer, hat_weights
from .layers import LAYERS, ConcatLinear, ConcatSquashLinear, IgnoreLinear
from .odenet import ACTIVATIONS, ODENet
from .reversed_time import ReversedTime

__all__ = [
    "ControlLayer",
    "hat_weights",
    "LAYERS",
    "ConcatLinear",
    "ConcatSquashLinear",
    "IgnoreLinear",
    "ODENet",
    "ACTIVATIONS",
    "ReversedTime",
]
