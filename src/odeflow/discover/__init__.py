"""Equation discovery (seed 002): neural ODE on irregular noisy data -> clean regular samples -> SINDy."""

from .neural_fit import NeuralFit, NeuralFitConfig, fit_neural_ode
from .pipeline import discover_equations, discover_from_csv
from .sindy import Equations, fit_sindy

__all__ = [
    "Equations",
    "fit_sindy",
    "NeuralFit",
    "NeuralFitConfig",
    "fit_neural_ode",
    "discover_equations",
    "discover_from_csv",
]
