"""Vector fields for neural ODEs: time-conditioned layers and the ODE nets built from them."""
from .layers import LAYERS, ConcatLinear, ConcatSquashLinear, IgnoreLinear
from .odenet import ACTIVATIONS, ODENet

__all__ = ["LAYERS", "ConcatLinear", "ConcatSquashLinear", "IgnoreLinear", "ODENet", "ACTIVATIONS"]
