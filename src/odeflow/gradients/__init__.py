"""How gradients flow through a solve: discretize-optimize or optimize-discretize."""

from .derivative_check import DerivativeCheck, derivative_check, plot_derivative_check
from .discretize_optimize import DiscretizeOptimize
from .optimize_discretize import OptimizeDiscretize

__all__ = ["DiscretizeOptimize", "OptimizeDiscretize", "DerivativeCheck", "derivative_check", "plot_derivative_check"]
